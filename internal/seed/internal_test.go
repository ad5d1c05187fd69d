package seed

import "testing"

// The ledger fills some columns by index; keep the indexes in step with the column list.
func TestLedgerColumnIndexes(t *testing.T) {
	for i, name := range map[int]string{lID: "id", lRequestID: "request_id", lFinalProvider: "final_provider_id", lIsSuccess: "is_success", lOutcome: "success_rate_outcome"} {
		if ledgerColumns[i] != name {
			t.Errorf("ledgerColumns[%d] = %q, want %q", i, ledgerColumns[i], name)
		}
	}
	if len(requestColumns) != numRequestColumns {
		t.Errorf("%d request columns, %d constants", len(requestColumns), numRequestColumns)
	}
	for i, name := range map[int]string{cID: "id", cCost: "cost_usd", cChain: "provider_chain", cEndpoint: "endpoint", cErrorMessage: "error_message", cCreatedAt: "created_at", cDeletedAt: "deleted_at"} {
		if requestColumns[i] != name {
			t.Errorf("requestColumns[%d] = %q, want %q", i, requestColumns[i], name)
		}
	}
}

func TestIndexStatements(t *testing.T) {
	_, indexes := Schema()
	stmts := indexStatements(indexes)
	if len(stmts) != 76 {
		t.Errorf("%d index statements, want 76", len(stmts))
	}
	if got := stmts[0]; got[:len("CREATE INDEX IF NOT EXISTS idx_message_request")] != "CREATE INDEX IF NOT EXISTS idx_message_request" {
		t.Errorf("first statement %q; the big tables' indexes should come first", got)
	}
}
