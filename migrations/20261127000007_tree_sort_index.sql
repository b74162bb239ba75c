-- A subtree is one range of tree_sort (every descendant's chain starts with
-- its root's and chr(30)), already in the order descendants() pages in:
-- this index lets a page read just its rows instead of the whole subtree.
CREATE INDEX customers_tree_sort_idx ON customers (tenant_id, tree_sort);
