//! The schema itself, no database needed: the checked-in `schema.graphql` is
//! what the code generates, and it contains the public contract under the
//! contract's compatibility rules.
//!
//! The contract is read from `tests/contract/schema.graphql`, a copy of
//! `../shared/contract/schema.graphql` kept in the repository so that the test
//! also runs in a fresh clone; `contract_copy_is_current` checks the copy
//! whenever the shared original is there.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use async_graphql_parser::Positioned;
use async_graphql_parser::parse_schema;
use async_graphql_parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, ServiceDocument, Type, TypeDefinition,
    TypeKind, TypeSystemDefinition,
};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text with trailing whitespace removed from every line and from the end.
fn normalize(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_owned()
}

/// Where two normalized texts first differ, for the failure message.
fn first_difference(
    (expected_label, expected): (&str, &str),
    (actual_label, actual): (&str, &str),
) -> Option<String> {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    let mut line = 1;
    loop {
        match (expected_lines.next(), actual_lines.next()) {
            (None, None) => return None,
            (Some(e), Some(a)) if e == a => line += 1,
            (e, a) => {
                let show =
                    |l: Option<&str>| l.map_or("<end of file>".to_owned(), |l| format!("{l:?}"));
                return Some(format!(
                    "first difference at line {line}: {expected_label} {}, {actual_label} {}",
                    show(e),
                    show(a)
                ));
            }
        }
    }
}

#[test]
fn checked_in_schema_is_current() {
    let path: PathBuf = manifest_dir().join("../schema.graphql");
    let checked_in = normalize(&read(&path));
    let generated = normalize(&canopy_api::graphql::sdl());
    if let Some(difference) =
        first_difference(("checked in", &checked_in), ("generated", &generated))
    {
        panic!(
            "{} is not what the code generates ({difference}).\n\
             Regenerate it at the workspace root with:\n\n    \
             cargo run -p canopy-api -- schema > schema.graphql\n",
            path.display()
        );
    }
}

#[test]
fn contract_copy_is_current() {
    let shared = manifest_dir().join("../../shared/contract/schema.graphql");
    let Ok(original) = fs::read_to_string(&shared) else {
        eprintln!(
            "{} is not there (a fresh clone?); not checking the copy against it",
            shared.display()
        );
        return;
    };
    let copy = manifest_dir().join("contract/schema.graphql");
    let copied = normalize(&read(&copy));
    let original = normalize(&original);
    if let Some(difference) = first_difference(("copy", &copied), ("contract", &original)) {
        panic!(
            "{} differs from the contract at {} ({difference}); copy the contract again",
            copy.display(),
            shared.display()
        );
    }
}

#[test]
fn schema_contains_the_contract() {
    let contract = read(&manifest_dir().join("contract/schema.graphql"));
    let problems = contract_problems(&contract, &canopy_api::graphql::sdl());
    let failures: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        failures.is_empty(),
        "the schema does not meet the contract (tests/contract/schema.graphql):\n{}",
        failures.join("\n")
    );
}

/// A way in which the project schema falls short of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// A contract item the project lacks (`type X`, `Type.field`, …).
    Missing(String),
    /// A contract item the project has, but not in a compatible form.
    Incompatible(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(item) => write!(f, "{item}: missing"),
            Problem::Incompatible(message) => f.write_str(message),
        }
    }
}

/// Everything in the contract SDL that the project SDL lacks or has in an
/// incompatible form, by the contract's rules: same names and kinds; a field
/// may be more specific (`String` -> `String!`), an argument or input field
/// less strict (`ID!` -> `ID`); anything may be added, except that an added
/// argument or input field must not be required, for contract callers do not
/// send it.
fn contract_problems(contract: &str, project: &str) -> Vec<Problem> {
    let contract = parse_schema(contract).expect("the contract parses");
    let project = parse_schema(project).expect("the project schema parses");
    let contract = types_of(&contract);
    let project = types_of(&project);

    let mut problems = Vec::new();
    for (name, expected) in &contract {
        let item = format!("{} {name}", kind_name(&expected.kind));
        let Some(actual) = project.get(name) else {
            problems.push(Problem::Missing(item));
            continue;
        };
        match (&expected.kind, &actual.kind) {
            (TypeKind::Scalar, TypeKind::Scalar) => {}
            (TypeKind::Object(e), TypeKind::Object(a)) => {
                implements(name, &e.implements, &a.implements, &mut problems);
                fields(name, &e.fields, &a.fields, &mut problems);
            }
            (TypeKind::Interface(e), TypeKind::Interface(a)) => {
                implements(name, &e.implements, &a.implements, &mut problems);
                fields(name, &e.fields, &a.fields, &mut problems);
            }
            (TypeKind::Union(e), TypeKind::Union(a)) => {
                for member in &e.members {
                    if !a.members.iter().any(|m| m.node == member.node) {
                        problems.push(Problem::Missing(format!("{name} | {}", member.node)));
                    }
                }
            }
            (TypeKind::Enum(e), TypeKind::Enum(a)) => {
                for value in &e.values {
                    let value = &value.node.value.node;
                    if !a.values.iter().any(|v| &v.node.value.node == value) {
                        problems.push(Problem::Missing(format!("{name}.{value}")));
                    }
                }
            }
            (TypeKind::InputObject(e), TypeKind::InputObject(a)) => {
                input_values(
                    |field| format!("{name}.{field}"),
                    "input field",
                    &e.fields,
                    &a.fields,
                    &mut problems,
                );
            }
            (_, a) => problems.push(Problem::Incompatible(format!(
                "{item}: the project has it as {} {name}",
                kind_name(a)
            ))),
        }
    }
    problems
}

/// The document's types by name, extensions merged into what they extend.
fn types_of(document: &ServiceDocument) -> BTreeMap<String, TypeDefinition> {
    let mut types: BTreeMap<String, TypeDefinition> = BTreeMap::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(definition) = definition else {
            continue;
        };
        let definition = definition.node.clone();
        let name = definition.name.node.to_string();
        let Some(base) = types.get_mut(&name) else {
            types.insert(name, definition);
            continue;
        };
        match (&mut base.kind, definition.kind) {
            (TypeKind::Object(b), TypeKind::Object(d)) => {
                b.implements.extend(d.implements);
                b.fields.extend(d.fields);
            }
            (TypeKind::Interface(b), TypeKind::Interface(d)) => {
                b.implements.extend(d.implements);
                b.fields.extend(d.fields);
            }
            (TypeKind::Union(b), TypeKind::Union(d)) => b.members.extend(d.members),
            (TypeKind::Enum(b), TypeKind::Enum(d)) => b.values.extend(d.values),
            (TypeKind::InputObject(b), TypeKind::InputObject(d)) => b.fields.extend(d.fields),
            _ => {}
        }
    }
    types
}

/// The SDL keyword that defines a type of this kind.
fn kind_name(kind: &TypeKind) -> &'static str {
    match kind {
        TypeKind::Scalar => "scalar",
        TypeKind::Object(_) => "type",
        TypeKind::Interface(_) => "interface",
        TypeKind::Union(_) => "union",
        TypeKind::Enum(_) => "enum",
        TypeKind::InputObject(_) => "input",
    }
}

/// The interfaces an object or interface implements.
fn implements<N: PartialEq + fmt::Display>(
    name: &str,
    expected: &[Positioned<N>],
    actual: &[Positioned<N>],
    problems: &mut Vec<Problem>,
) {
    for interface in expected {
        if !actual.iter().any(|a| a.node == interface.node) {
            problems.push(Problem::Missing(format!(
                "{name} implements {}",
                interface.node
            )));
        }
    }
}

/// The fields of an object or interface, and their arguments.
fn fields(
    owner: &str,
    expected: &[Positioned<FieldDefinition>],
    actual: &[Positioned<FieldDefinition>],
    problems: &mut Vec<Problem>,
) {
    for field in expected {
        let field = &field.node;
        let item = format!("{owner}.{}", field.name.node);
        let Some(found) = actual.iter().find(|a| a.node.name.node == field.name.node) else {
            problems.push(Problem::Missing(item));
            continue;
        };
        let found = &found.node;
        if !output_compatible(&field.ty.node, &found.ty.node) {
            problems.push(Problem::Incompatible(format!(
                "{item}: contract type {}, project type {}; a field may only be more specific \
                 (T -> T!)",
                field.ty.node, found.ty.node
            )));
        }
        input_values(
            |argument| format!("{item}({argument}:)"),
            "argument",
            &field.arguments,
            &found.arguments,
            problems,
        );
    }
}

/// Arguments or input-object fields: each contract one present and no
/// stricter, and none added that callers would have to send.
fn input_values(
    item: impl Fn(&str) -> String,
    what: &str,
    expected: &[Positioned<InputValueDefinition>],
    actual: &[Positioned<InputValueDefinition>],
    problems: &mut Vec<Problem>,
) {
    for value in expected {
        let value = &value.node;
        let name = &value.name.node;
        let Some(found) = actual.iter().find(|a| &a.node.name.node == name) else {
            problems.push(Problem::Missing(item(name)));
            continue;
        };
        let found = &found.node;
        if !input_compatible(&value.ty.node, &found.ty.node) {
            problems.push(Problem::Incompatible(format!(
                "{}: contract type {}, project type {}; an {what} may only be less strict \
                 (T! -> T)",
                item(name),
                value.ty.node,
                found.ty.node
            )));
        }
    }
    for added in actual {
        let added = &added.node;
        let in_contract = expected.iter().any(|e| e.node.name.node == added.name.node);
        if !in_contract && !added.ty.node.nullable && added.default_value.is_none() {
            problems.push(Problem::Incompatible(format!(
                "{}: the project adds a required {what} ({}, no default) that contract callers \
                 do not send",
                item(&added.name.node),
                added.ty.node
            )));
        }
    }
}

/// Whether a field of type `actual` gives callers what a field of type
/// `expected` promises: the same named type, nullability only taken away.
fn output_compatible(expected: &Type, actual: &Type) -> bool {
    if actual.nullable && !expected.nullable {
        return false;
    }
    same_shape(&expected.base, &actual.base, output_compatible)
}

/// Whether an argument of type `actual` accepts everything one of type
/// `expected` does: the same named type, nullability only added.
fn input_compatible(expected: &Type, actual: &Type) -> bool {
    if !actual.nullable && expected.nullable {
        return false;
    }
    same_shape(&expected.base, &actual.base, input_compatible)
}

fn same_shape(expected: &BaseType, actual: &BaseType, items: fn(&Type, &Type) -> bool) -> bool {
    match (expected, actual) {
        (BaseType::Named(e), BaseType::Named(a)) => e == a,
        (BaseType::List(e), BaseType::List(a)) => items(e, a),
        _ => false,
    }
}

/// The comparison itself: it must catch what breaks callers and accept what
/// the rules allow.
#[test]
fn contract_comparison_reports_incompatibilities() {
    let contract = r#"
        scalar DateTime
        interface Node { id: ID! }
        type Thing implements Node {
            id: ID!
            name: String
            title: String!
            tags: [String]
            at: DateTime
            children(first: Int, parentId: ID): [Thing!]!
        }
        enum Color { RED GREEN BLUE }
        input ThingInput { name: String!, color: Color }
        type Gone { x: Int }
        type Query {
            thing(id: ID!): Thing
            things(ids: [ID!]!, color: Color): [Thing]
            color: Color
        }
    "#;
    let project = r#"
        scalar DateTime
        interface Node { id: ID! }
        type Thing {
            id: ID!
            name: String!
            title: String
            tags: [String!]!
            children(first: Int, parentId: ID!, depth: Int!, extra: Int, more: Int! = 1): [Thing!]
        }
        enum Color { RED BLUE }
        input ThingInput { name: String, color: Color!, size: Int! }
        input Query { thing: ID }
    "#;
    let mut problems: Vec<String> = contract_problems(contract, project)
        .iter()
        .map(ToString::to_string)
        .collect();
    problems.sort();
    let mut expected = vec![
        "type Gone: missing",
        "type Query: the project has it as input Query",
        "Thing implements Node: missing",
        "Thing.title: contract type String!, project type String; a field may only be more \
         specific (T -> T!)",
        "Thing.at: missing",
        "Thing.children: contract type [Thing!]!, project type [Thing!]; a field may only be more \
         specific (T -> T!)",
        "Thing.children(parentId:): contract type ID, project type ID!; an argument may only be \
         less strict (T! -> T)",
        "Thing.children(depth:): the project adds a required argument (Int!, no default) that \
         contract callers do not send",
        "Color.GREEN: missing",
        "ThingInput.color: contract type Color, project type Color!; an input field may only be \
         less strict (T! -> T)",
        "ThingInput.size: the project adds a required input field (Int!, no default) that \
         contract callers do not send",
    ];
    expected.sort();
    assert_eq!(problems, expected);

    // What the rules allow: more specific fields (also inside lists), less
    // strict arguments and input fields, and additions that nobody must use.
    let compatible = r#"
        scalar DateTime
        interface Node { id: ID! }
        interface Named { name: String }
        type Thing implements Node & Named {
            id: ID!
            name: String!
            title: String!
            tags: [String!]!
            at: DateTime!
            children(first: Int, parentId: ID, depth: Int, more: Int! = 1): [Thing!]!
            extra: Int!
        }
        enum Color { RED GREEN BLUE BLACK }
        input ThingInput { name: String, color: Color, size: Int }
        type Gone { x: Int! }
        type Query {
            thing(id: ID): Thing!
            things(ids: [ID], color: Color): [Thing!]!
            color: Color!
            more: Int
        }
    "#;
    assert_eq!(contract_problems(contract, compatible), Vec::new());
}
