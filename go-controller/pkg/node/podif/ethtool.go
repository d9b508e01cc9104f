package podif

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with the ifr_data member of its union.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [16]byte
}

// TxChecksumOff does `ethtool -K <ifname> tx off` in the caller's network
// namespace, through the ioctl rather than a process per pod.
func TxChecksumOff(ifName string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ev := ethtoolValue{cmd: unix.ETHTOOL_STXCSUM, data: 0}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifName)
	ifr.data = uintptr(unsafe.Pointer(&ev))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("turn off tx checksum offload on %s: %w", ifName, errno)
	}
	return nil
}

// TxChecksumEnabled reads the TX checksum offload setting.
func TxChecksumEnabled(ifName string) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	ev := ethtoolValue{cmd: unix.ETHTOOL_GTXCSUM}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifName)
	ifr.data = uintptr(unsafe.Pointer(&ev))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return false, fmt.Errorf("read tx checksum offload of %s: %w", ifName, errno)
	}
	return ev.data != 0, nil
}
