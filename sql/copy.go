package sql

import pg_query "github.com/pganalyze/pg_query_go/v6"

// CopiesFromClient reports whether query is COPY ... FROM STDIN, which
// reads its data from the client in the COPY sub-protocol.
func CopiesFromClient(query string) bool {
	tree, err := pg_query.Parse(query)
	if err != nil || len(tree.GetStmts()) != 1 {
		return false
	}
	cs := tree.GetStmts()[0].GetStmt().GetCopyStmt()
	return cs != nil && cs.GetIsFrom() && cs.GetFilename() == "" && !cs.GetIsProgram()
}
