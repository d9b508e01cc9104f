package ovndb

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEndpoints(t *testing.T) {
	if got := Endpoints(" tcp:10.0.0.1:6641, tcp:10.0.0.2:6641,,"); !slices.Equal(got, []string{"tcp:10.0.0.1:6641", "tcp:10.0.0.2:6641"}) {
		t.Errorf("%q", got)
	}
	if Endpoints("") != nil {
		t.Error("empty address gives endpoints")
	}
}

func TestConnectErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := NB(ctx, "", nil); err == nil || !strings.Contains(err.Error(), "no OVN_Northbound address") {
		t.Errorf("no address: %v", err)
	}
	if _, err := NB(ctx, "ssl:10.0.0.1:6641", nil); err == nil || !strings.Contains(err.Error(), "needs --private-key") {
		t.Errorf("ssl: %v", err)
	}
	if _, err := SB(ctx, "unix:/nonexistent/sb.sock", nil); err == nil || !strings.Contains(err.Error(), "connect to OVN_Southbound") {
		t.Errorf("unreachable: %v", err)
	}
}
