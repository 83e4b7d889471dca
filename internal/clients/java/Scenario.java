// The client scenario of cmd/pgcdc/clients_common_test.go, run with pgJDBC.
//
// Prepared statements run past pgJDBC's prepareThreshold (5), after which
// the driver switches to named server-side statements and asks for binary
// results for the types it can read in binary (int, numeric, timestamptz).
// Connection details come from the environment (PGCDC_*, SOURCE_*). It
// prints "ok <step>" for every step passed and exits non-zero on the first
// failure. Run with: java -cp /usr/share/java/postgresql.jar Scenario.java

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.postgresql.PGStatement;

public class Scenario {
    static final Map<String, String> E = System.getenv();
    static final String SLOT = E.get("PGCDC_SLOT"), PUB = E.get("PGCDC_PUB");
    static final int BIG_ROWS = Integer.parseInt(E.get("BIG_ROWS"));
    static final long CANCEL_AFTER_MS = Long.parseLong(E.get("CANCEL_AFTER_MS"));
    static final int PAST_THRESHOLD = 6; // pgJDBC's default prepareThreshold is 5

    static void ok(String step, Object detail) {
        System.out.println("ok " + step + " " + detail);
        System.out.flush();
    }

    static void check(boolean cond, String msg) {
        if (!cond) {
            System.out.println("FAIL " + msg);
            System.out.flush();
            System.exit(1);
        }
    }

    static Connection pgcdc(String sslmode, String password) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", E.get("PGCDC_USER"));
        p.setProperty("password", password);
        p.setProperty("sslmode", sslmode);
        p.setProperty("ApplicationName", "jdbc-scenario");
        p.setProperty("connectTimeout", "10");
        String url = "jdbc:postgresql://" + E.get("PGCDC_HOST") + ":" + E.get("PGCDC_PORT") + "/" + E.get("PGCDC_DBNAME");
        return DriverManager.getConnection(url, p);
    }

    static Connection source() throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", E.get("SOURCE_USER"));
        p.setProperty("password", E.get("SOURCE_PASSWORD"));
        p.setProperty("sslmode", "disable");
        String url = "jdbc:postgresql://" + E.get("SOURCE_HOST") + ":" + E.get("SOURCE_PORT") + "/" + E.get("SOURCE_DBNAME");
        return DriverManager.getConnection(url, p);
    }

    /** Every row as a list of column values, each as getString() renders it. */
    static List<List<String>> rows(ResultSet rs) throws SQLException {
        List<List<String>> out = new ArrayList<>();
        ResultSetMetaData md = rs.getMetaData();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                if (md.getColumnType(i) == java.sql.Types.TIMESTAMP || md.getColumnType(i) == java.sql.Types.TIMESTAMP_WITH_TIMEZONE) {
                    java.sql.Timestamp ts = rs.getTimestamp(i);
                    row.add(ts == null ? null : ts.toInstant().toString());
                } else {
                    row.add(rs.getString(i));
                }
            }
            out.add(row);
        }
        rs.close();
        return out;
    }

    static List<List<String>> query(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            return rows(st.executeQuery(sql));
        }
    }

    static String sqlState(SQLException e) {
        return e.getSQLState();
    }

    public static void main(String[] args) throws Exception {
        System.out.println("pgJDBC " + org.postgresql.util.DriverInfo.DRIVER_FULL_NAME + ", java " + System.getProperty("java.version"));
        Connection src = source();

        // tls: SCRAM over TLS (sslmode=require fails without TLS).
        try (Connection c = pgcdc("require", E.get("PGCDC_PASSWORD"))) {
            String version = c.getMetaData().getDatabaseProductVersion();
            check(c.getMetaData().getDatabaseMajorVersion() >= 9, "server version " + version);
            check(query(c, "SELECT 1").equals(List.of(List.of("1"))), "SELECT 1 over TLS");
            ok("tls", "server version " + version);
        }

        // bad_password
        try {
            pgcdc("disable", "wrong").close();
            check(false, "a wrong password was accepted");
        } catch (SQLException e) {
            check("28P01".equals(sqlState(e)), "wrong password: " + sqlState(e) + " " + e.getMessage());
        }
        ok("bad_password", "28P01");

        Connection conn = pgcdc("disable", E.get("PGCDC_PASSWORD"));

        // init: literals; progress NOTICEs arrive as SQLWarnings.
        List<List<String>> got;
        try (Statement st = conn.createStatement()) {
            got = rows(st.executeQuery("SELECT table_name, snapshot_rows FROM init_replication('" + SLOT + "', '" + PUB
                    + "', schema_name => 'shop', table_names => ARRAY['orders', 'customers', 'big'], persist_snapshots => true)"));
            boolean notice = false;
            for (SQLWarning w = st.getWarnings(); w != null; w = w.getNextWarning()) {
                notice |= w.getMessage().startsWith("snapshot shop.orders: 3 rows copied");
            }
            check(notice, "no snapshot progress NOTICE");
        }
        check(got.equals(List.of(List.of("shop.orders", "3"), List.of("shop.customers", "3"), List.of("shop.big", "0"))), "init_replication = " + got);
        ok("init", got);

        // replicate: bound parameters, past the prepare threshold.
        PreparedStatement rep = conn.prepareStatement("SELECT table_name, inserts, updates FROM replicate(?, ?, target_batch_size => ?)");
        for (int i = 0; i < PAST_THRESHOLD; i++) {
            try (Statement st = src.createStatement()) {
                st.executeUpdate("INSERT INTO shop.orders (customer_id, amount, note) VALUES (" + i + ", " + i + ".5, 'jdbc " + i + "')");
                st.executeUpdate("UPDATE shop.customers SET email = 'jdbc" + i + "@example.com' WHERE id = 3");
            }
            rep.setString(1, SLOT);
            rep.setString(2, PUB);
            rep.setInt(3, 5 + i);
            Map<String, String> res = new TreeMap<>();
            for (List<String> r : rows(rep.executeQuery())) {
                res.put(r.get(0), r.get(1) + "/" + r.get(2));
            }
            check(res.equals(Map.of("shop.orders", "1/0", "shop.customers", "0/1")), "replicate #" + i + " = " + res);
        }
        check(rep.unwrap(PGStatement.class).isUseServerPrepare(), "replicate() is not server-prepared past the threshold");
        ok("replicate", PAST_THRESHOLD + " calls, named statement");

        // passthrough: a typed query past the threshold (binary results).
        String q = "SELECT id, customer_id, amount, note, placed_at FROM shop.orders WHERE customer_id >= ? ORDER BY id";
        List<List<String>> want;
        try (PreparedStatement ps = src.prepareStatement(q)) {
            ps.setInt(1, 0);
            want = rows(ps.executeQuery());
        }
        PreparedStatement pass = conn.prepareStatement(q);
        for (int i = 0; i < PAST_THRESHOLD; i++) {
            pass.setInt(1, 0);
            got = rows(pass.executeQuery());
            check(got.equals(want), "orders differ on run " + i + ":\nsource  " + want + "\nreplica " + got);
        }
        check(pass.unwrap(PGStatement.class).isUseServerPrepare(), "passthrough is not server-prepared past the threshold");
        try (PreparedStatement ps = conn.prepareStatement("SELECT count(*), sum(amount), max(placed_at) FROM shop.orders WHERE note LIKE ?")) {
            for (int i = 0; i < PAST_THRESHOLD; i++) {
                ps.setString(1, "jdbc%");
                ResultSet rs = ps.executeQuery();
                check(rs.next() && rs.getLong(1) == PAST_THRESHOLD && rs.getBigDecimal(2).toPlainString().equals("18.00") && rs.getTimestamp(3) != null,
                        "aggregate over the replica");
                rs.close();
            }
        }
        ok("passthrough", want.size() + " orders");

        // error: an unknown argument fails with 42883; the connection recovers.
        try (Statement st = conn.createStatement()) {
            st.executeQuery("SELECT * FROM replicate('" + SLOT + "', '" + PUB + "', bogus => 1)");
            check(false, "unknown argument accepted");
        } catch (SQLException e) {
            check("42883".equals(sqlState(e)), "unknown argument: " + sqlState(e) + " " + e.getMessage());
        }
        check(query(conn, "SELECT 1").equals(List.of(List.of("1"))), "SELECT 1 after an error");
        ok("error", "42883");

        // transaction: a call inside a block works and COMMIT is really sent
        // (pgJDBC skips it when the server says idle); a failure aborts the
        // block until ROLLBACK.
        conn.setAutoCommit(false);
        try (Statement st = src.createStatement()) {
            st.executeUpdate("INSERT INTO shop.customers VALUES (20, 'jdbc tx', NULL)");
        }
        rep.setString(1, SLOT);
        rep.setString(2, PUB);
        rep.setInt(3, 1000);
        got = rows(rep.executeQuery());
        check(got.equals(List.of(List.of("shop.customers", "1", "0"))), "replicate in a transaction = " + got);
        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TABLE IF NOT EXISTS jdbc_scratch (x int)");
            st.executeUpdate("INSERT INTO jdbc_scratch VALUES (42)");
        }
        conn.commit();
        try (Connection other = pgcdc("disable", E.get("PGCDC_PASSWORD"))) {
            check(query(other, "SELECT x FROM jdbc_scratch").equals(List.of(List.of("42"))), "COMMIT did not reach the replica");
        }
        try (Statement st = conn.createStatement()) {
            st.executeQuery("SELECT * FROM replicate('" + SLOT + "', '" + PUB + "', nope => true)");
            check(false, "unknown argument accepted");
        } catch (SQLException e) {
            check("42883".equals(sqlState(e)), "failing call in a block: " + sqlState(e));
        }
        try (Statement st = conn.createStatement()) {
            st.executeQuery("SELECT 1");
            check(false, "statement accepted in an aborted transaction");
        } catch (SQLException e) {
            check("25P02".equals(sqlState(e)), "in an aborted block: " + sqlState(e) + " " + e.getMessage());
        }
        conn.rollback();
        check(query(conn, "SELECT 1").equals(List.of(List.of("1"))), "SELECT 1 after ROLLBACK");
        // A fetch size inside a transaction makes pgJDBC read through a
        // named portal, a few rows per Execute (PortalSuspended between).
        try (PreparedStatement ps = conn.prepareStatement(q)) {
            ps.setFetchSize(2);
            ps.setInt(1, 0);
            got = rows(ps.executeQuery());
            check(got.equals(want), "orders read 2 rows at a time differ:\nsource  " + want + "\nreplica " + got);
        }
        conn.commit();
        conn.setAutoCommit(true);
        ok("transaction", "COMMIT applied, 25P02 until ROLLBACK");

        // cancel: a long replicate(), cancelled with Statement.cancel().
        try (Statement st = src.createStatement()) {
            st.executeUpdate("INSERT INTO shop.big SELECT g, g FROM generate_series(1, " + BIG_ROWS + ") g");
        }
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        rep.setString(1, SLOT);
        rep.setString(2, PUB);
        rep.setInt(3, 10);
        final PreparedStatement toCancel = rep;
        timer.schedule(() -> {
            try {
                toCancel.cancel();
            } catch (SQLException e) {
                System.out.println("cancel: " + e);
            }
        }, CANCEL_AFTER_MS, TimeUnit.MILLISECONDS);
        long start = System.nanoTime();
        try {
            rows(rep.executeQuery());
            check(false, "replicate() finished before the cancel");
        } catch (SQLException e) {
            check("57014".equals(sqlState(e)), "cancelled replicate: " + sqlState(e) + " " + e.getMessage());
        }
        timer.shutdown();
        timer.awaitTermination(10, TimeUnit.SECONDS);
        ok("cancel", String.format("57014 after %.1fs", (System.nanoTime() - start) / 1e9));

        // after_cancel: at once, the slot must already be free
        rep.setString(1, SLOT);
        rep.setString(2, PUB);
        rep.setInt(3, 1000);
        got = rows(rep.executeQuery());
        check(got.equals(List.of(List.of("shop.big", Integer.toString(BIG_ROWS), "0"))), "replicate after cancel = " + got);
        String agg = "SELECT count(*), sum(v) FROM shop.big";
        want = query(src, agg);
        got = query(conn, agg);
        check(Objects.equals(got, want), "big differs: source " + want + ", replica " + got);
        ok("after_cancel", got);

        conn.close();
        src.close();
    }
}
