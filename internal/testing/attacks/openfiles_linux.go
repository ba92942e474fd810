package attacks

import "golang.org/x/sys/unix"

// lowerOpenFiles lowers process pid's soft limit of open files to at most
// n, the one the API reads at each accept (lowering it, and giving it
// back, needs no privilege over one's own processes); restore gives the
// old limit back.
func lowerOpenFiles(pid, n int) (restore func(), err error) {
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		return nil, err
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: min(uint64(n), old.Cur), Max: old.Max}, nil); err != nil {
		return nil, err
	}
	return func() { unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil) }, nil
}
