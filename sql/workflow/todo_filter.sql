-- The to-do's filter, shared by its page (todo.sql) and its counts (todo_count.sql).
-- The states come as an array: the planner sees them and takes the state index.
where p.status = any(:states::text[])
  and (:scope_town::text is null or p.town_code = :scope_town::text)
