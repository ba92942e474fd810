package attacks

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

// FullDiskBytes is the size of the small file system FullDisk's box keeps
// its data on: tests/adversarial's.
const FullDiskBytes = 48 << 20

// FullDisk is the hostile tenant who fills the disk: an uploader of 1 MiB
// functions (the C echo padded with random bytes) one after another, past
// the end of the box's data disk, each after the last's answer; every one
// beyond the disk's room should be refused 507. It needs a box of its own
// whose data directory is a small file system (FullDiskBytes): on any
// other it would fill the machine's disk, and a full box would end every
// attack after it.
func FullDisk() Attack {
	var seq atomic.Int64
	return Attack{
		Name: "full disk", What: "an uploader of 1 MiB functions past the end of a 48 MiB data disk, one after another",
		Setup: func(context.Context, Box) error { return nil },
		Run: func(ctx context.Context, b Box) map[string]int {
			echo, err := b.Module("test/echo")
			if err != nil {
				return map[string]int{"no module: " + err.Error(): 1}
			}
			return loop(ctx, 1, func(*http.Client) string {
				c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				name := fmt.Sprintf("attack_fill%d", seq.Add(1))
				_, err := b.User.CreateFunction(c, client.DefaultModule, client.Upload{Name: name, Code: Padded(echo, 1<<20)})
				return clientAnswer(err, "201")
			})
		},
	}
}

// Padded is code with a custom section of pad random bytes appended: a
// module that still runs, pad bytes larger, that no compression or
// deduplication makes smaller.
func Padded(code []byte, pad int) []byte {
	payload := appendULEB(nil, uint64(len("pad")))
	payload = append(payload, "pad"...)
	noise := make([]byte, pad)
	rand.Read(noise)
	payload = append(payload, noise...)
	out := append([]byte(nil), code...)
	out = append(out, 0) // custom section
	out = appendULEB(out, uint64(len(payload)))
	return append(out, payload...)
}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
