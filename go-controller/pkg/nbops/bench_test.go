package nbops_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// BenchmarkPortsBatchedVsSerial adds 1000 ports to one switch of a real
// ovsdb-server (with northd running, as in production) per iteration:
//
//	serial     one caller, one transaction per port (Transact)
//	batched32  32 callers, one port each at a time (TransactBatched)
//	chunked100 one caller, 100 ports per transaction: the ceiling
//	           batching can reach
func BenchmarkPortsBatchedVsSerial(b *testing.B) {
	const ports = 1000
	for _, mode := range []struct {
		name    string
		workers int
		chunk   int
	}{
		{"serial", 1, 1},
		{"batched32", 32, 1},
		{"chunked100", 1, 100},
	} {
		b.Run(mode.name, func(b *testing.B) {
			e := newEnv(b, testenv.StartOVN(b).NBAddr)
			sw := e.switchWithPort("bench", "p0")
			txns0, _ := e.tx.Stats()
			b.ResetTimer()
			start := time.Now()
			for it := range b.N {
				var wg sync.WaitGroup
				for w := range mode.workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						addPorts(b, e, sw, it, w, mode.workers, ports, mode.chunk)
					}()
				}
				wg.Wait()
			}
			elapsed := time.Since(start)
			b.StopTimer()
			txns, _ := e.tx.Stats()
			b.ReportMetric(float64(ports*b.N)/elapsed.Seconds(), "ports/s")
			b.ReportMetric(float64(txns-txns0)/float64(b.N), "txns/op")
			if got := len(e.switchNamed("bench").Ports); got != ports*b.N+1 {
				b.Fatalf("switch has %d ports, want %d", got, ports*b.N+1)
			}
		})
	}
}

// addPorts adds ports w, w+workers, ... of iteration it, chunk ports per
// transaction; with one port per chunk and several workers it goes
// through TransactBatched.
func addPorts(b *testing.B, e *env, sw string, it, w, workers, ports, chunk int) {
	var ops []ovsdb.Operation
	n := 0
	for i := w; i < ports; i += workers {
		mac := fmt.Sprintf("0a:58:0a:%02x:%02x:%02x", it%256, i/256, i%256)
		addr := fmt.Sprintf("%s 10.%d.%d.%d", mac, it%256, i/256, i%256)
		more, _, err := nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{
			Name:         fmt.Sprintf("it%d-p%d", it, i),
			Addresses:    []string{addr},
			PortSecurity: []string{addr},
			ExternalIDs:  own.IDs("Pod", fmt.Sprintf("bench/p%d", i), ""),
		})
		if err != nil {
			b.Error(err)
			return
		}
		ops = append(ops, more...)
		if n++; n < chunk && i+workers < ports {
			continue
		}
		send := e.tx.Transact
		if workers > 1 {
			send = e.tx.TransactBatched
		}
		if err := send(context.Background(), "bench ports", ops); err != nil {
			b.Error(err)
			return
		}
		ops, n = nil, 0
	}
}
