"""SQLAlchemy's inspector (what Superset and pandas use to describe a
database) for the compatibility suite, cmd/pgcdc/compat_test.go, which runs
it against Postgres and against pgcdc and compares the outputs.

The connection comes from COMPAT_URL. Each case starts with "== <name>",
then a header line and one line per row, columns separated by " | ". A
call that fails prints "ERROR <exception>" as its only row.
"""
import os
import sqlalchemy

engine = sqlalchemy.create_engine(os.environ["COMPAT_URL"].replace("postgresql://", "postgresql+psycopg2://", 1))
insp = sqlalchemy.inspect(engine)


def case(name, header, fn):
    print("== " + name)
    try:
        rows = fn()
        print(" | ".join(header))
        for r in rows:
            print(" | ".join(str(v) for v in r))
    except Exception as e:  # the failure is the answer
        print("ERROR " + type(e).__name__ + " " + str(e).splitlines()[0])


case("get_schema_names", ["schema"], lambda: [[s] for s in insp.get_schema_names() if s in ("shop", "public", "pgcdc")])
# Sorted: SQLAlchemy lists tables in the server's physical order.
case("get_table_names", ["table"], lambda: [[t] for t in sorted(insp.get_table_names(schema="shop"))])
case("get_view_names", ["view"], lambda: [[v] for v in insp.get_view_names(schema="shop")])
for table in ("orders", "order_lines"):
    case("get_columns " + table, ["name", "type", "nullable", "default", "autoincrement", "comment"],
         lambda: [[c["name"], repr(c["type"]), c["nullable"], c["default"], c.get("autoincrement"), c.get("comment")]
                  for c in insp.get_columns(table, schema="shop")])
    case("get_pk_constraint " + table, ["name", "columns"],
         lambda: [[insp.get_pk_constraint(table, schema="shop")["name"], insp.get_pk_constraint(table, schema="shop")["constrained_columns"]]])
    case("get_foreign_keys " + table, ["name", "columns", "referred"],
         lambda: [[f["name"], f["constrained_columns"], f["referred_table"]] for f in insp.get_foreign_keys(table, schema="shop")])
    case("get_indexes " + table, ["name", "columns", "unique"],
         lambda: [[i["name"], i["column_names"], i["unique"]] for i in insp.get_indexes(table, schema="shop")])
    case("get_unique_constraints " + table, ["name", "columns"],
         lambda: [[u["name"], u["column_names"]] for u in insp.get_unique_constraints(table, schema="shop")])
    case("get_table_comment " + table, ["text"], lambda: [[insp.get_table_comment(table, schema="shop")["text"]]])
    case("has_table " + table, ["exists"], lambda: [[insp.has_table(table, schema="shop")]])
