package sim_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/bitstorm/bitstorm/stages/sim"
)

func run(t *testing.T, cfg sim.Config) *sim.Result {
	t.Helper()
	r, err := sim.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run(%+v): %v", cfg, err)
	}
	return r
}

// small is a swarm that simulates in tens of milliseconds: 20 leechers and a seeder, 100
// pieces of 64 KiB (4 blocks), 1 MiB/s uploads.
func small(seed uint64, picker string) sim.Config {
	return sim.Config{Seed: seed, Peers: 20, Seeders: 1, Pieces: 100, PieceLength: 64 << 10,
		UploadRate: 1 << 20, Latency: 20 * time.Millisecond, Picker: picker, MaxTime: 10 * time.Minute}
}

func leechers(r *sim.Result) []sim.PeerResult {
	var ps []sim.PeerResult
	for _, p := range r.Peers {
		if !p.Seeder {
			ps = append(ps, p)
		}
	}
	return ps
}

func TestRunIsDeterministic(t *testing.T) {
	for _, picker := range sim.Pickers {
		t.Run(picker, func(t *testing.T) {
			// Everything that draws randomness: rates, latencies, availability, churn, a
			// seeder leaving, finished leechers leaving.
			cfg := sim.Config{Seed: 7, Peers: 15, Seeders: 1, Pieces: 60, PieceLength: 64 << 10,
				UploadRate: 512 << 10, UploadRateMax: 2 << 20, Latency: 30 * time.Millisecond,
				InitialAvailability: 0.2, Churn: 6, SeederLeaveAfter: 40 * time.Second,
				SeedTime: 20 * time.Second, Picker: picker, MaxTime: 10 * time.Minute}
			a, b := run(t, cfg), run(t, cfg)
			if !reflect.DeepEqual(a, b) {
				for i := range min(len(a.Peers), len(b.Peers)) {
					if a.Peers[i] != b.Peers[i] {
						t.Fatalf("same seed, peer %d differs:\n%+v\n%+v", i, a.Peers[i], b.Peers[i])
					}
				}
				t.Fatalf("same seed, results differ:\n%+v\n%+v", a, b)
			}
			cfg.Seed++
			if c := run(t, cfg); reflect.DeepEqual(a.Peers, c.Peers) {
				t.Errorf("seeds %d and %d gave the same peers", cfg.Seed-1, cfg.Seed)
			}
		})
	}
}

func TestEveryLeecherFinishes(t *testing.T) {
	for _, picker := range sim.Pickers {
		t.Run(picker, func(t *testing.T) {
			cfg := small(1, picker)
			r := run(t, cfg)
			if r.Finished != cfg.Peers || r.Unfinished != 0 || r.Left != 0 {
				t.Fatalf("finished %d, unfinished %d, left %d; want all %d finished", r.Finished, r.Unfinished, r.Left, cfg.Peers)
			}
			// The leechers start empty: each downloads the torrent at least once, and the
			// seeder uploads every piece at least once.
			var rates int64
			for _, p := range r.Peers {
				rates += p.UploadRate
				if !p.Seeder && p.Downloaded < r.Size {
					t.Errorf("peer %d downloaded %d bytes, less than the torrent's %d", p.ID, p.Downloaded, r.Size)
				}
			}
			if r.SeederUploaded < r.Size {
				t.Errorf("the seeder uploaded %d bytes, less than one copy (%d)", r.SeederUploaded, r.Size)
			}
			// Bandwidth binds: the swarm cannot deliver its copies faster than every peer
			// uploading at its rate all the time.
			if bound := time.Duration(float64(int64(cfg.Peers)*r.Size) / float64(rates) * float64(time.Second)); r.Max < bound {
				t.Errorf("last leecher finished after %v, faster than the bandwidth allows (%v)", r.Max, bound)
			}
			if !(0 < r.Mean && r.Median <= r.P90 && r.P90 <= r.Max && r.Max <= r.End) {
				t.Errorf("mean %v median %v p90 %v max %v end %v: not ordered", r.Mean, r.Median, r.P90, r.Max, r.End)
			}
		})
	}
}

// TestSeederLeavingEarly: the only seeder leaves once it has uploaded about two copies.
// Rarest-first fetches the pieces few peers hold first, so the leechers hold every piece
// between them by then and all finish; sequential has everyone fetch the same low pieces, the
// high ones never leave the seeder, and nobody finishes. (Both held for seeds 1 to 100.)
func TestSeederLeavingEarly(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		results := map[string]*sim.Result{}
		for _, picker := range []string{"rarest", "sequential"} {
			cfg := small(seed, picker)
			cfg.SeederLeaveAfter = 15 * time.Second // 2.3 copies at 1 MiB/s
			results[picker] = run(t, cfg)
		}
		rarest, sequential := results["rarest"], results["sequential"]
		if rarest.Finished != rarest.Config.Peers {
			t.Errorf("seed %d: rarest-first: %d of %d leechers finished, want all", seed, rarest.Finished, rarest.Config.Peers)
		}
		if rarest.Median > sequential.Median {
			t.Errorf("seed %d: median completion %v with rarest-first, worse than %v with sequential", seed, rarest.Median, sequential.Median)
		}
		if sequential.Finished == sequential.Config.Peers {
			t.Errorf("seed %d: sequential: every leecher finished though the seeder left early", seed)
		}
	}
}

func TestSeederLeaveCopies(t *testing.T) {
	cfg := small(5, "rarest")
	cfg.UploadRateMax = 3 << 20
	cfg.SeederLeaveCopies = 1.5
	r := run(t, cfg)
	seeder := r.Peers[0]
	if want := int64(1.5 * float64(r.Size)); seeder.Uploaded < want || seeder.Uploaded >= want+16<<10 {
		t.Errorf("the seeder uploaded %d bytes, want %.1f copies (%d) and less than one block more", seeder.Uploaded, cfg.SeederLeaveCopies, want)
	}
	if seeder.Gone == 0 || seeder.State != sim.Finished {
		t.Errorf("seeder: %+v, want it gone", seeder)
	}
}

// TestNoSeeder: leechers that hold every piece between them finish without any seeder.
func TestNoSeeder(t *testing.T) {
	for _, picker := range sim.Pickers {
		cfg := small(2, picker)
		cfg.Seeders, cfg.Peers, cfg.InitialAvailability = 0, 16, 0.5 // a piece is missing from all with probability 2^-16
		if r := run(t, cfg); r.Finished != cfg.Peers {
			t.Errorf("%s: %d of %d leechers finished, want all", picker, r.Finished, cfg.Peers)
		}
	}
}

func TestChurn(t *testing.T) {
	cfg := small(3, "rarest")
	cfg.Churn = 30 // one leecher replaced every 2 s on average
	r := run(t, cfg)
	var finished, left, newcomers int
	var sum time.Duration
	for _, p := range leechers(r) {
		switch p.State {
		case sim.Finished:
			finished++
			sum += p.Time
			if !p.Initial {
				newcomers++
			}
		case sim.Left:
			left++
			if p.Gone == 0 {
				t.Errorf("peer %d left but has no time of leaving", p.ID)
			}
		default:
			t.Errorf("peer %d did not finish (joined at %v), though the seeder stays", p.ID, p.Joined)
		}
	}
	if left == 0 || newcomers == 0 {
		t.Fatalf("%d left, %d newcomers finished; want some of each", left, newcomers)
	}
	// Those that left unfinished are not counted.
	if r.Finished != finished || r.Left != left || r.Unfinished != 0 {
		t.Errorf("Result counts %d finished, %d left, %d unfinished; want %d, %d, 0", r.Finished, r.Left, r.Unfinished, finished, left)
	}
	if want := sum / time.Duration(finished); r.Mean != want {
		t.Errorf("mean %v, want %v over the finished leechers", r.Mean, want)
	}
}

func TestSeedTime(t *testing.T) {
	cfg := small(4, "rarest")
	cfg.SeedTime = 200 * time.Millisecond // the leechers finish within about half a second of each other
	r := run(t, cfg)
	if r.Finished != cfg.Peers {
		t.Fatalf("%d of %d finished", r.Finished, cfg.Peers)
	}
	gone := 0
	for _, p := range leechers(r) {
		if p.Gone != 0 {
			gone++
			if want := p.Joined + p.Time + cfg.SeedTime; p.Gone != want {
				t.Errorf("peer %d left at %v, want %v: %v after it finished", p.ID, p.Gone, want, cfg.SeedTime)
			}
		}
	}
	if gone == 0 {
		t.Error("no leecher left after seeding")
	}
}

func TestRunConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   sim.Config
		field string
		msg   string
	}{
		{"no leechers", sim.Config{}, "Peers", "sim: Peers 0: want at least 1"},
		{"picker", sim.Config{Peers: 1, Picker: "fastest"}, "Picker", `sim: Picker "fastest": want rarest, sequential or random`},
		{"availability", sim.Config{Peers: 1, InitialAvailability: 1.5}, "InitialAvailability", "sim: InitialAvailability 1.5: want a fraction in [0, 1]"},
		{"latency", sim.Config{Peers: 1, Latency: -time.Second}, "Latency", "sim: Latency -1s: want 0 or more"},
		{"slots", sim.Config{Peers: 1, UploadSlots: -1}, "UploadSlots", "sim: UploadSlots -1: want at least 1"},
		{"seeders", sim.Config{Peers: 1, Seeders: -1}, "Seeders", "sim: Seeders -1: want 0 or more"},
		{"too big", sim.Config{Peers: 1000, Seeders: 1, Pieces: 100_000}, "Pieces", "sim: Pieces 100000: want at most 9990 for 1001 peers"},
		{"churn", sim.Config{Peers: 1, Churn: -1}, "Churn", "sim: Churn -1: want 0 to 1000 peers a minute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sim.Run(t.Context(), tc.cfg)
			var ce *sim.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || err.Error() != tc.msg {
				t.Fatalf("Run = %v, want a ConfigError on %s: %q", err, tc.field, tc.msg)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sim.Run(ctx, small(1, "rarest")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context = %v, want context.Canceled", err)
	}
}
