//go:build !linux

package main

import (
	"errors"
	"net"
)

func enablePktinfo(*net.UDPConn) error { return errors.New("pktinfo is only implemented on linux") }

func replyControl([]byte) []byte { return nil }
