// Prints pgJDBC's DatabaseMetaData and ResultSetMetaData answers for the
// compatibility suite (cmd/pgcdc/compat_test.go), which runs it against
// Postgres and against pgcdc and compares the two outputs case by case.
//
// Usage: java -cp postgresql.jar Metadata.java <jdbc-url> (user and
// password in COMPAT_USER and COMPAT_PASSWORD). Each case starts with a
// line "== <name>", then one line per row, columns separated by " | ".
// A call that fails prints "ERROR <SQLSTATE> <message>" as its only row.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class Metadata {
    interface Call {
        ResultSet run(DatabaseMetaData md) throws SQLException;
    }

    static void print(ResultSet rs) throws SQLException {
        ResultSetMetaData m = rs.getMetaData();
        StringBuilder h = new StringBuilder();
        for (int i = 1; i <= m.getColumnCount(); i++) {
            h.append(i > 1 ? " | " : "").append(m.getColumnLabel(i));
        }
        System.out.println(h);
        while (rs.next()) {
            StringBuilder b = new StringBuilder();
            for (int i = 1; i <= m.getColumnCount(); i++) {
                String v = rs.getString(i);
                // One row, one line: remarks may span lines.
                b.append(i > 1 ? " | " : "").append(v == null ? null : v.replace("\n", "\\n"));
            }
            System.out.println(b);
        }
        rs.close();
    }

    static void call(Connection c, String name, Call f) {
        System.out.println("== " + name);
        try {
            print(f.run(c.getMetaData()));
        } catch (SQLException e) {
            System.out.println("ERROR " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
        }
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.setProperty("user", System.getenv("COMPAT_USER"));
        p.setProperty("password", System.getenv().getOrDefault("COMPAT_PASSWORD", ""));
        p.setProperty("connectTimeout", "10");
        try (Connection c = DriverManager.getConnection(args[0], p)) {
            call(c, "getSchemas", md -> md.getSchemas(null, "shop"));
            call(c, "getTables", md -> md.getTables(null, "shop", "%", new String[] {"TABLE", "VIEW"}));
            call(c, "getColumns", md -> md.getColumns(null, "shop", "%", "%"));
            call(c, "getPrimaryKeys", md -> md.getPrimaryKeys(null, "shop", "order_lines"));
            call(c, "getIndexInfo", md -> md.getIndexInfo(null, "shop", "orders", false, false));
            call(c, "getImportedKeys", md -> md.getImportedKeys(null, "shop", "order_lines"));
            call(c, "getExportedKeys", md -> md.getExportedKeys(null, "shop", "orders"));
            call(c, "getFunctions", md -> md.getFunctions(null, "pgcdc", "%"));
            call(c, "getTypeInfo", md -> md.getTypeInfo());
            System.out.println("== ResultSetMetaData");
            try (Statement st = c.createStatement()) {
                ResultSet rs = st.executeQuery("SELECT id, customer_id, amount, note, status, flag FROM shop.orders");
                ResultSetMetaData m = rs.getMetaData();
                System.out.println("column | type | typeName | precision | scale | nullable | table | schema | class");
                for (int i = 1; i <= m.getColumnCount(); i++) {
                    System.out.println(m.getColumnName(i) + " | " + m.getColumnType(i) + " | " + m.getColumnTypeName(i) + " | "
                        + m.getPrecision(i) + " | " + m.getScale(i) + " | " + m.isNullable(i) + " | " + m.getTableName(i) + " | "
                        + m.getSchemaName(i) + " | " + m.getColumnClassName(i));
                }
            } catch (SQLException e) {
                System.out.println("ERROR " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
            }
        }
    }
}
