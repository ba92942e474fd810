package storage

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScanActivationsOfSkipsOthers: a scan for one function's records
// passes the others by ID only (a nil record, never decoded), newest
// first, and decodes the matching ones whole; a record stored as JSON by
// an earlier version is decoded to be checked.
func TestScanActivationsOfSkipsOthers(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var recs []Activation
	for i := range 6 {
		fn := "other"
		if i%3 == 0 {
			fn = "mine"
		}
		recs = append(recs, Activation{ID: fmt.Sprintf("01JD0Q6ZK4V3T8M4W7R2C9XH5%d", i), Module: "_", Function: fn,
			Status: StatusSuccess, QueuedAt: time.Now().UTC(), Logs: []string{strings.Repeat("x", 1000)}})
	}
	if err := s.WriteActivations(recs, true); err != nil {
		t.Fatal(err)
	}
	legacy, _ := json.Marshal(Activation{ID: "01JD0Q6ZK4V3T8M4W7R2C9XH59", Module: "_", Function: "other", Status: StatusSuccess})
	if err := s.db.Set(keyActivation("01JD0Q6ZK4V3T8M4W7R2C9XH59"), legacy, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.ScanActivationsOf("", "_", "mine", func(id string, a *Activation) bool {
		switch {
		case a == nil:
			got = append(got, id[len(id)-1:]+"-")
		case a.ID != id || a.Function == "mine" && len(a.Logs) != 1:
			t.Errorf("record %s decoded as %+v", id, a)
		default:
			got = append(got, id[len(id)-1:]+a.Function)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	// 9 is JSON: decoded, then it is the caller's to filter.
	if want := "9other 5- 4- 3mine 2- 1- 0mine"; strings.Join(got, " ") != want {
		t.Errorf("scan gave %q, want %q", strings.Join(got, " "), want)
	}
}
