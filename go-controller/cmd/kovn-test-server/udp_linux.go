package main

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// enablePktinfo asks the kernel for each datagram's destination address so
// the reply can leave from it. On a multi-homed host (a node with br-ex and
// ovn-k8s-mp0 addresses, the lab's external host) the kernel would otherwise
// pick the source from the route back to the client, and the client's
// connected socket silently drops a reply from an address it did not target.
func enablePktinfo(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		// A dual-stack socket reports IPv4 destinations as v4-mapped
		// IPV6_PKTINFO and accepts them back the same way; an IPv4-only
		// socket refuses the IPv6 option and needs IP_PKTINFO.
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVPKTINFO, 1)
		if serr != nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// replyControl turns the pktinfo received with a datagram into the control
// message that sends the reply from the address the client sent to.
func replyControl(oob []byte) []byte {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == syscall.IPPROTO_IPV6 && m.Header.Type == syscall.IPV6_PKTINFO &&
			len(m.Data) >= syscall.SizeofInet6Pktinfo:
			var info [syscall.SizeofInet6Pktinfo]byte // addr[16], ifindex
			copy(info[:16], m.Data[:16])
			// Pin the interface only where the address needs it: forcing it
			// elsewhere would break asymmetric routes.
			if netip.AddrFrom16([16]byte(m.Data[:16])).IsLinkLocalUnicast() {
				copy(info[16:], m.Data[16:syscall.SizeofInet6Pktinfo])
			}
			return cmsg(syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO, info[:])
		case m.Header.Level == syscall.IPPROTO_IP && m.Header.Type == syscall.IP_PKTINFO &&
			len(m.Data) >= syscall.SizeofInet4Pktinfo:
			var info [syscall.SizeofInet4Pktinfo]byte // ifindex, spec_dst, addr
			copy(info[4:8], m.Data[8:12])             // source := header destination
			return cmsg(syscall.IPPROTO_IP, syscall.IP_PKTINFO, info[:])
		}
	}
	return nil
}

func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, syscall.CmsgSpace(len(data)))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = int32(level)
	h.Type = int32(typ)
	h.SetLen(syscall.CmsgLen(len(data)))
	copy(b[syscall.CmsgLen(0):], data)
	return b
}
