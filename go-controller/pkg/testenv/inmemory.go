package testenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/database/inmemory"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovn-kubernetes/libovsdb/server"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// InMemoryDB is libovsdb's in-memory OVSDB server for one test. It checks
// schema constraints and references like ovsdb-server but runs no northd.
type InMemoryDB struct {
	// Addr is the server's endpoint, "unix:/tmp/kovn-mem-*/db.sock", for
	// code under test that dials on its own.
	Addr string
	// Client is connected with every table monitored.
	Client client.Client
	// Server lets tests misbehave on purpose, e.g. Server.DoEcho(false).
	Server *server.OvsdbServer
}

// StartInMemoryNB serves an empty NB database.
func StartInMemoryNB(t testing.TB) *InMemoryDB {
	t.Helper()
	return startInMemory(t, mustModel(t, nbdb.FullDatabaseModel), nbdb.Schema())
}

// StartInMemoryOVS serves an empty Open_vSwitch database (no
// ovs-vswitchd: ofport and the other columns it writes stay empty).
func StartInMemoryOVS(t testing.TB) *InMemoryDB {
	t.Helper()
	return startInMemory(t, mustModel(t, vswitchd.FullDatabaseModel), vswitchd.Schema())
}

func startInMemory(t testing.TB, clientModel model.ClientDBModel, schema ovsdb.DatabaseSchema) *InMemoryDB {
	t.Helper()
	dbModel, errs := model.NewDatabaseModel(schema, clientModel)
	if len(errs) > 0 {
		t.Fatalf("%s model: %v", schema.Name, errors.Join(errs...))
	}
	logger := logr.Discard()
	db := inmemory.NewDatabase(map[string]model.ClientDBModel{schema.Name: clientModel}, &logger)
	srv, err := server.NewOvsdbServer(db, &logger, dbModel)
	if err != nil {
		t.Fatal(err)
	}
	// Short dir for the same unix socket length limit as StartOVN.
	dir, err := os.MkdirTemp("", "kovn-mem-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "db.sock")
	done := make(chan struct{})
	var serveErr error
	go func() {
		defer close(done)
		serveErr = srv.Serve("unix", sock)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
		if serveErr != nil {
			t.Errorf("in-memory %s server: %v", schema.Name, serveErr)
		}
	})
	// Ready turns true only once Serve has bound the socket; Close must not
	// race with that, and clients must not dial before it.
	deadline := time.After(readyTimeout)
	for !srv.Ready() {
		select {
		case <-done:
			t.Fatalf("in-memory %s server stopped: %v", schema.Name, serveErr)
		case <-deadline:
			t.Fatalf("in-memory %s server not listening after %v", schema.Name, readyTimeout)
		case <-time.After(10 * time.Millisecond):
		}
	}
	addr := "unix:" + sock
	return &InMemoryDB{Addr: addr, Client: Connect(t, addr, clientModel), Server: srv}
}

// PlayOVNController stands in for ovn-controller until ctx ends: every
// interface with an iface-id gets external_ids:ovn-installed=true, which
// code under test waits for. The keys are spelled out here because
// pkg/node/ovs, which names them, tests with this package.
func (db *InMemoryDB) PlayOVNController(ctx context.Context) {
	for ctx.Err() == nil {
		var ifaces []*vswitchd.Interface
		_ = db.Client.List(ctx, &ifaces)
		for _, i := range ifaces {
			if i.ExternalIDs["iface-id"] == "" || i.ExternalIDs["ovn-installed"] == "true" {
				continue
			}
			i.ExternalIDs["ovn-installed"] = "true"
			if ops, err := db.Client.Where(i).Update(i, &i.ExternalIDs); err == nil {
				_, _ = db.Client.Transact(ctx, ops...)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
