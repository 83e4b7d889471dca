package sql

import pg_query "github.com/pganalyze/pg_query_go/v6"

// TxCommand is a transaction-control statement a destination emulates.
type TxCommand int

const (
	TxBegin TxCommand = iota + 1
	TxCommit
	TxRollback
)

// TransactionCommand recognises one Postgres transaction-control statement
// that starts or ends a block: BEGIN, START TRANSACTION, COMMIT, END,
// ROLLBACK, ABORT, with any isolation level or access mode, which clients
// send (pgx's BeginTx writes "begin isolation level serializable") but a
// destination's own dialect may not parse. readOnly reports READ ONLY.
// Savepoints, AND CHAIN and two-phase commit are not recognised: emulating
// them as a plain block would silently do something else.
func TransactionCommand(query string) (cmd TxCommand, readOnly bool, ok bool) {
	res, err := pg_query.Parse(query)
	if err != nil || len(res.GetStmts()) != 1 {
		return 0, false, false
	}
	ts := res.GetStmts()[0].GetStmt().GetTransactionStmt()
	if ts == nil || ts.GetChain() {
		return 0, false, false
	}
	switch ts.GetKind() {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		cmd = TxBegin
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		cmd = TxCommit
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		cmd = TxRollback
	default:
		return 0, false, false
	}
	for _, o := range ts.GetOptions() {
		d := o.GetDefElem()
		if d.GetDefname() == "transaction_read_only" && d.GetArg().GetAConst().GetIval().GetIval() == 1 {
			readOnly = true
		}
	}
	return cmd, readOnly, true
}
