//go:build unix

package discovery

import "syscall"

// setMulticastIF makes the socket fd send its multicast from src's interface.
func setMulticastIF(fd uintptr, src [4]byte) error {
	return syscall.SetsockoptInet4Addr(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, src)
}
