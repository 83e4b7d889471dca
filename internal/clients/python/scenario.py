"""The client scenario of cmd/pgcdc/clients_common_test.go, run with psycopg2
the way dbt runs SQL: autocommit off, so psycopg2 wraps every call in
BEGIN ... COMMIT, and every statement behind a dbt query comment.

psycopg2 interpolates %s parameters on the client, so what pgcdc sees are
literals in the simple query protocol (dbt's pre-hooks look the same).

Connection details come from the environment (PGCDC_*, SOURCE_*). It prints
"ok <step>" for every step passed and exits non-zero on the first failure.
"""

import os
import sys
import threading
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions as ext

E = os.environ
SLOT, PUB = E["PGCDC_SLOT"], E["PGCDC_PUB"]
BIG_ROWS = int(E["BIG_ROWS"])
CANCEL_AFTER_MS = int(E["CANCEL_AFTER_MS"])
DBT = ('/* {"app": "dbt", "dbt_version": "1.8.0", "profile_name": "pgcdc", '
       '"target_name": "dev", "node_id": "model.shop.orders"} */\n')


def ok(step, detail=""):
    print("ok", step, detail, flush=True)


def check(cond, msg):
    if not cond:
        print("FAIL", msg, flush=True)
        sys.exit(1)


def pgcdc(**kw):
    args = dict(host=E["PGCDC_HOST"], port=E["PGCDC_PORT"], user=E["PGCDC_USER"],
                password=E["PGCDC_PASSWORD"], dbname=E["PGCDC_DBNAME"],
                connect_timeout=10, application_name="dbt")
    args.update(kw)
    return psycopg2.connect(**args)


def source():
    conn = psycopg2.connect(host=E["SOURCE_HOST"], port=E["SOURCE_PORT"], user=E["SOURCE_USER"],
                            password=E["SOURCE_PASSWORD"], dbname=E["SOURCE_DBNAME"],
                            sslmode="disable", connect_timeout=10)
    conn.autocommit = True
    return conn


def rows(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def status(conn):
    return conn.info.transaction_status


print("psycopg2", psycopg2.__version__, "libpq", psycopg2.extensions.libpq_version(), flush=True)
src = source()

# tls: SCRAM over TLS.
with pgcdc(sslmode="require") as c:
    check(c.info.ssl_in_use, "connection is not TLS")
    check(c.server_version >= 90000, "server_version %r" % c.server_version)
    check(c.info.parameter_status("integer_datetimes") == "on", "integer_datetimes")
    check(rows(c, DBT + "SELECT 1") == [(1,)], "SELECT 1 over TLS")
    c.commit()
c.close()
ok("tls", "server_version=%s" % c.server_version)

# bad_password
try:
    pgcdc(password="wrong", sslmode="disable").close()
    check(False, "a wrong password was accepted")
except psycopg2.OperationalError as e:
    check("password authentication failed" in str(e), "wrong password: %s" % e)
ok("bad_password")

conn = pgcdc(sslmode="disable")
check(not conn.autocommit, "autocommit should be off, as in dbt")

# init: literals, inside BEGIN ... COMMIT; progress NOTICEs.
got = rows(conn, DBT + "SELECT table_name, snapshot_rows FROM init_replication('%s', '%s', "
           "schema_name => 'shop', table_names => ARRAY['orders', 'customers', 'big'], "
           "persist_snapshots => true)" % (SLOT, PUB))
check(status(conn) == ext.TRANSACTION_STATUS_INTRANS, "status after a call in BEGIN: %d" % status(conn))
conn.commit()
check(got == [("shop.orders", 3), ("shop.customers", 3), ("shop.big", 0)], "init_replication = %r" % got)
check(any("snapshot shop.orders: 3 rows copied" in n for n in conn.notices), "notices: %r" % conn.notices)
ok("init", repr(got))

# replicate: bound parameters (interpolated by psycopg2), inside BEGIN ... COMMIT.
with src.cursor() as cur:
    cur.execute("INSERT INTO shop.orders (customer_id, amount, note) VALUES (%s, %s, %s)", (7, "1.25", "dbt"))
    cur.execute("UPDATE shop.orders SET note = %s WHERE id = 1", ("psycopg2",))
    cur.execute("DELETE FROM shop.orders WHERE id = 2")
    cur.execute("UPDATE shop.customers SET email = NULL WHERE id = 1")
got = rows(conn, DBT + "SELECT table_name, inserts, updates, deletes FROM replicate(%s, %s, target_batch_size => %s)",
           (SLOT, PUB, 7))
conn.commit()
got = sorted(got)
check(got == [("shop.customers", 0, 1, 0), ("shop.orders", 1, 1, 1)], "replicate = %r" % got)
ok("replicate", repr(got))

# passthrough: the replica equals the source, read the same way.
q = "SELECT id, customer_id, amount, note, placed_at FROM shop.orders ORDER BY id"
want, got = rows(src, q), rows(conn, DBT + q)
check(got == want, "orders differ:\nsource  %r\nreplica %r" % (want, got))
q = "SELECT id, name, email FROM shop.customers WHERE id >= %s ORDER BY id"
want, got = rows(src, q, (0,)), rows(conn, DBT + q, (0,))
check(got == want, "customers differ:\nsource  %r\nreplica %r" % (want, got))
conn.commit()
ok("passthrough", "%d orders" % len(want))

# error: an unknown argument fails with 42883; the connection recovers.
try:
    rows(conn, DBT + "SELECT * FROM replicate(%s, %s, bogus => 1)", (SLOT, PUB))
    check(False, "unknown argument accepted")
except psycopg2.errors.UndefinedFunction as e:
    check(e.pgcode == "42883", "pgcode %s" % e.pgcode)
check(status(conn) == ext.TRANSACTION_STATUS_INERROR, "status after an error in BEGIN: %d" % status(conn))
ok("error", "42883")

# transaction: the block stays aborted until ROLLBACK.
try:
    rows(conn, DBT + "SELECT count(*) FROM shop.orders")
    check(False, "statement accepted in an aborted transaction")
except psycopg2.errors.InFailedSqlTransaction as e:
    check(e.pgcode == "25P02", "pgcode %s" % e.pgcode)
conn.rollback()
check(status(conn) == ext.TRANSACTION_STATUS_IDLE, "status after ROLLBACK: %d" % status(conn))
check(rows(conn, DBT + "SELECT 1") == [(1,)], "SELECT 1 after ROLLBACK")
conn.commit()
ok("transaction", "25P02 until ROLLBACK")

# cancel: a long replicate(), cancelled with conn.cancel() from a thread.
with src.cursor() as cur:
    cur.execute("INSERT INTO shop.big SELECT g, g FROM generate_series(1, %s) g", (BIG_ROWS,))
timer = threading.Timer(CANCEL_AFTER_MS / 1000.0, conn.cancel)
timer.start()
start = time.time()
try:
    rows(conn, DBT + "SELECT * FROM replicate(%s, %s, target_batch_size => %s)", (SLOT, PUB, 10))
    check(False, "replicate() finished before the cancel")
except psycopg2.errors.QueryCanceled as e:
    check(e.pgcode == "57014", "pgcode %s" % e.pgcode)
timer.join()
conn.rollback()
ok("cancel", "57014 after %.1fs" % (time.time() - start))

# after_cancel: the next call completes and the replica equals the source.
got = rows(conn, DBT + "SELECT table_name, inserts FROM replicate(%s, %s)", (SLOT, PUB))
conn.commit()
check(got == [("shop.big", BIG_ROWS)], "replicate after cancel = %r" % got)
q = "SELECT count(*), sum(v) FROM shop.big"
want, got = rows(src, q), rows(conn, DBT + q)
conn.commit()
check(got == want, "big differs: source %r, replica %r" % (want, got))
ok("after_cancel", repr(got))

conn.close()
src.close()
