-- Searching a tenant's customers by any three or more characters of title
-- or number, page by page in sort_key order.
--
-- A trigram GIN index finds the matches but not their order: a common term
-- ("ini" in 51,000 of a million titles) fetched and sorted every match for
-- each page. customer_grams is an inverted index kept in sort order: one row
-- per distinct three-character piece of lower(title) || chr(31) ||
-- lower(number) and customer, so a page walks one piece's rows from its
-- cursor and stops after the page, checking the whole term on each row's
-- sort_key without visiting the customer. A piece is kept as its hashtext:
-- a collision only adds rows that the check then drops.

CREATE FUNCTION search_grams(key text) RETURNS SETOF integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT DISTINCT hashtext(substr(k, i, 3))
    FROM (SELECT lower(key COLLATE "default") AS k) AS lowered,
         generate_series(1, char_length(k) - 2) AS i
$$;

-- sort_key is unique within a tenant: it ends with the customer's number.
CREATE TABLE customer_grams (
    tenant_id bigint NOT NULL,
    gram      integer NOT NULL,
    sort_key  text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, gram, sort_key)
);

-- Kept by statement triggers, so inserting, renaming or deleting many
-- customers in one statement (a subtree, a tenant) writes the pieces in one
-- statement too. Moves change neither title nor number and write nothing.
-- Transition tables have no statistics: left to itself the planner hashed
-- them against all of customer_grams (9 s to delete a 10,000-customer
-- subtree at a million customers), so the functions that look pieces up
-- join through the primary key (0.4 s).
CREATE FUNCTION customers_grams_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_grams (tenant_id, gram, sort_key)
    SELECT n.tenant_id, g, n.sort_key FROM inserted n, search_grams(n.sort_key) AS g;
    RETURN NULL;
END $$;

CREATE FUNCTION customers_grams_update() RETURNS trigger
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    -- sort_key is unique within a tenant: the keys that went and came are
    -- the renamed customers' old and new ones (a move changes none).
    DELETE FROM customer_grams d
    USING (SELECT tenant_id, sort_key FROM before_update
           EXCEPT SELECT tenant_id, sort_key FROM after_update) AS o,
          search_grams(o.sort_key) AS g
    WHERE d.tenant_id = o.tenant_id AND d.gram = g AND d.sort_key = o.sort_key;
    INSERT INTO customer_grams (tenant_id, gram, sort_key)
    SELECT n.tenant_id, g, n.sort_key
    FROM (SELECT tenant_id, sort_key FROM after_update
          EXCEPT SELECT tenant_id, sort_key FROM before_update) AS n,
         search_grams(n.sort_key) AS g;
    RETURN NULL;
END $$;

CREATE FUNCTION customers_grams_delete() RETURNS trigger
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    DELETE FROM customer_grams d
    USING deleted o, search_grams(o.sort_key) AS g
    WHERE d.tenant_id = o.tenant_id AND d.gram = g AND d.sort_key = o.sort_key;
    RETURN NULL;
END $$;

CREATE TRIGGER customers_grams_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION customers_grams_insert();
CREATE TRIGGER customers_grams_update AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
    FOR EACH STATEMENT EXECUTE FUNCTION customers_grams_update();
CREATE TRIGGER customers_grams_delete AFTER DELETE ON customers
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION customers_grams_delete();

INSERT INTO customer_grams (tenant_id, gram, sort_key)
SELECT c.tenant_id, g, c.sort_key FROM customers c, search_grams(c.sort_key) AS g;
