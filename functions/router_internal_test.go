package functions

import "testing"

func TestRecordText(t *testing.T) {
	got := recordText([]any{"shop.orders", int64(3), nil, true, []string{"a", "b c", "", `q"`}, "x,y"})
	want := `(shop.orders,3,,t,"{a,""b c"","""",""q\\""""}","x,y")`
	if got != want {
		t.Fatalf("recordText = %s\nwant          %s", got, want)
	}
}
