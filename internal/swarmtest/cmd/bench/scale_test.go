package main

import (
	"os"
	"testing"
)

// TestEventCounter: events split across writes are counted once each, by name; a line
// that is not JSON counts nothing.
func TestEventCounter(t *testing.T) {
	var e eventCounter
	for _, w := range []string{
		`{"time":"t","torrent":"a","event":"completed"}` + "\n" + `{"event":"tracker_`,
		`reply","peers":0}` + "\n",
		"not json\n",
		`{"event":"tracker_reply","peers":3}` + "\n" + `{"event":"completed"`, // no newline yet
	} {
		if n, err := e.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	for name, want := range map[string]int{"completed": 1, "tracker_reply": 2, "peer_connected": 0} {
		if got := e.count(name); got != want {
			t.Errorf("count(%q) = %d, want %d", name, got, want)
		}
	}
}

// TestProcStatusKiB reads this process's own figures.
func TestProcStatusKiB(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	rss, hwm := procStatusKiB(os.Getpid(), "VmRSS"), procStatusKiB(os.Getpid(), "VmHWM")
	if rss <= 0 || hwm < rss {
		t.Errorf("VmRSS %d KiB, VmHWM %d KiB: want 0 < VmRSS <= VmHWM", rss, hwm)
	}
	if got := procStatusKiB(os.Getpid(), "NoSuchKey"); got != 0 {
		t.Errorf("NoSuchKey = %d, want 0", got)
	}
}
