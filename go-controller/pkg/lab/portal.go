package lab

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// DialInNetNS opens a TCP or UDP connection from inside a network
// namespace. The socket keeps that namespace after the thread switches
// back, so the caller can use it from anywhere.
func DialInNetNS(ctx context.Context, netnsPath, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	return conn, err
}

// RunPortal forwards connections accepted on listen (in the caller's
// namespace: a loopback HOST:PORT, or unix:PATH) to target dialled inside
// netnsPath. It is how the root namespace reaches the lab's API server, and
// OVN central's pod, without a route into the lab.
func RunPortal(ctx context.Context, listen, netnsPath, target string) error {
	network, addr := "tcp", listen
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		// A socket file left by an earlier run refuses the bind.
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		network, addr = "unix", path
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	log.Printf("portal: %s → %s in %s", listen, target, netnsPath)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		go forward(ctx, c, netnsPath, target)
	}
}

func forward(ctx context.Context, client net.Conn, netnsPath, target string) {
	defer client.Close()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	server, err := DialInNetNS(dctx, netnsPath, "tcp", target)
	cancel()
	if err != nil {
		log.Printf("portal: dial %s: %v", target, err)
		return
	}
	defer server.Close()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if hc, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
		}
	}
	wg.Add(2)
	go pipe(server, client)
	go pipe(client, server)
	wg.Wait()
}
