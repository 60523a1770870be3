package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The model checks the table against a deliberately naive description of the
// same rules: a file of 32 bytes plus one cell standing for everything from
// byte 32 to EOF. POSIX state is a per-owner, per-cell mode; Mandatory locks
// are a list in arrival order.

const (
	modelBytes = 32
	modelCells = modelBytes + 1 // the last cell is [32, EOF)
)

type modelLock struct {
	owner      Owner
	excl       bool
	start, end uint64
}

type model struct {
	posix map[Owner]*[modelCells]int8 // 0 free, 1 shared, 2 exclusive
	mand  []modelLock
}

func newModel() *model { return &model{posix: map[Owner]*[modelCells]int8{}} }

func cellsOf(start, end uint64) []int {
	var cs []int
	for c := start; c < min(end, modelBytes); c++ {
		cs = append(cs, int(c))
	}
	if end > modelBytes {
		cs = append(cs, modelBytes)
	}
	return cs
}

func intersects(a, b []int) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func (md *model) conflict(l Lock) bool {
	cs := cellsOf(l.Start, l.End)
	for o, cells := range md.posix {
		if o == l.Owner && l.Flavor == POSIX {
			continue
		}
		for _, c := range cs {
			if cells[c] == 2 || (cells[c] == 1 && l.Exclusive) {
				return true
			}
		}
	}
	for _, h := range md.mand {
		if !intersects(cs, cellsOf(h.start, h.end)) {
			continue
		}
		if h.owner == l.Owner && l.Flavor == Mandatory {
			if l.Exclusive {
				return true
			}
			continue
		}
		if h.excl || l.Exclusive {
			return true
		}
	}
	return false
}

func (md *model) lock(l Lock) error {
	if md.conflict(l) {
		return ErrConflict
	}
	if l.Flavor == Mandatory {
		md.mand = append(md.mand, modelLock{l.Owner, l.Exclusive, l.Start, l.End})
		return nil
	}
	cells := md.posix[l.Owner]
	if cells == nil {
		cells = new([modelCells]int8)
		md.posix[l.Owner] = cells
	}
	mode := int8(1)
	if l.Exclusive {
		mode = 2
	}
	for _, c := range cellsOf(l.Start, l.End) {
		cells[c] = mode
	}
	return nil
}

func (md *model) unlock(l Lock) error {
	if l.Flavor == POSIX {
		if cells := md.posix[l.Owner]; cells != nil {
			for _, c := range cellsOf(l.Start, l.End) {
				cells[c] = 0
			}
		}
		return nil
	}
	victim := -1
	for i, h := range md.mand {
		if h.owner == l.Owner && h.start == l.Start && h.end == l.End {
			victim = i
			if h.excl {
				break
			}
		}
	}
	if victim < 0 {
		return ErrNotLocked
	}
	md.mand = slices.Delete(md.mand, victim, victim+1)
	return nil
}

func (md *model) checkIO(o Owner, off, n uint64, write bool) bool {
	cs := cellsOf(off, off+n)
	for _, h := range md.mand {
		if !intersects(cs, cellsOf(h.start, h.end)) {
			continue
		}
		if (h.excl && h.owner != o) || (write && !h.excl) {
			return true
		}
	}
	return false
}

func (md *model) release(match func(Owner) bool) {
	for o := range md.posix {
		if match(o) {
			delete(md.posix, o)
		}
	}
	md.mand = slices.DeleteFunc(md.mand, func(h modelLock) bool { return match(h.owner) })
}

// compare checks that the table holds exactly what the model says.
func (md *model) compare(got []Lock) error {
	posixGot := map[Owner]*[modelCells]int8{}
	var mandGot []modelLock
	for _, l := range got {
		if l.Flavor == Mandatory {
			mandGot = append(mandGot, modelLock{l.Owner, l.Exclusive, l.Start, l.End})
			continue
		}
		cells := posixGot[l.Owner]
		if cells == nil {
			cells = new([modelCells]int8)
			posixGot[l.Owner] = cells
		}
		mode := int8(1)
		if l.Exclusive {
			mode = 2
		}
		for _, c := range cellsOf(l.Start, l.End) {
			if cells[c] != 0 {
				return fmt.Errorf("owner %s covers cell %d twice", l.Owner, c)
			}
			cells[c] = mode
		}
	}
	for o, want := range md.posix {
		g := posixGot[o]
		if g == nil {
			g = new([modelCells]int8)
		}
		if *g != *want {
			return fmt.Errorf("owner %s: table %v, model %v", o, *g, *want)
		}
		delete(posixGot, o)
	}
	for o, g := range posixGot {
		if *g != ([modelCells]int8{}) {
			return fmt.Errorf("owner %s holds %v, model has nothing", o, *g)
		}
	}
	order := func(a, b modelLock) int {
		return cmpLocks(a, b)
	}
	want := slices.Clone(md.mand)
	slices.SortFunc(want, order)
	slices.SortFunc(mandGot, order)
	if !slices.Equal(want, mandGot) {
		return fmt.Errorf("mandatory locks: table %v, model %v", mandGot, want)
	}
	return nil
}

func cmpLocks(a, b modelLock) int {
	if c := cmpUint(a.start, b.start); c != 0 {
		return c
	}
	if c := cmpUint(a.end, b.end); c != 0 {
		return c
	}
	if a.owner != b.owner {
		if a.owner.String() < b.owner.String() {
			return -1
		}
		return 1
	}
	switch {
	case a.excl == b.excl:
		return 0
	case a.excl:
		return 1
	}
	return -1
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var modelOwners = []Owner{
	{Client: "nlm:h1", ID: "a"},
	{Client: "nlm:h1", ID: "b"},
	{Client: "smb:s2", ID: "c"},
}

// runModel decodes a sequence of operations from data and applies each to the
// table and to the model, failing at the first disagreement or broken
// invariant. Every input is a valid sequence.
func runModel(t *testing.T, data []byte) {
	m := New(Options{})
	md := newModel()
	ctx := context.Background()
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	for step := 0; len(data) > 0; step++ {
		opb, ob, sb, eb := next(), next(), next(), next()
		o := modelOwners[int(ob)%len(modelOwners)]
		flavor := POSIX
		if ob&0x80 != 0 {
			flavor = Mandatory
		}
		start := uint64(sb) % modelBytes
		end := ToEOF
		if eb%8 != 0 {
			end = start + 1 + uint64(eb)%(modelBytes-start)
		}
		l := Lock{Owner: o, Flavor: flavor, Exclusive: opb&0x80 != 0, Start: start, End: end}
		var what string
		switch opb % 8 {
		case 0, 1, 2:
			what = "lock " + l.String()
			err, want := m.Lock(ctx, file1, l, false), md.lock(l)
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Fatalf("step %d %s: table %v, model %v", step, what, err, want)
			}
		case 3, 4:
			what = "unlock " + l.String()
			err, want := m.Unlock(file1, l), md.unlock(l)
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Fatalf("step %d %s: table %v, model %v", step, what, err, want)
			}
		case 5:
			what = "test " + l.String()
			_, found, err := m.Test(file1, l)
			if err != nil || found != md.conflict(l) {
				t.Fatalf("step %d %s: table %v %v, model %v", step, what, found, err, md.conflict(l))
			}
		case 6:
			n := uint64(eb % 40)
			write := opb&0x40 != 0
			what = fmt.Sprintf("io %s off %d len %d write %v", o, start, n, write)
			err := m.CheckIO(file1, o, start, n, write)
			if errors.Is(err, ErrConflict) != md.checkIO(o, start, n, write) {
				t.Fatalf("step %d %s: table %v, model %v", step, what, err, md.checkIO(o, start, n, write))
			}
		case 7:
			if opb&0x40 != 0 {
				what = "release client " + o.Client
				m.ReleaseClient(o.Client)
				md.release(func(x Owner) bool { return x.Client == o.Client })
			} else {
				what = "release owner " + o.String()
				m.ReleaseOwner(o)
				md.release(func(x Owner) bool { return x == o })
			}
		}
		if err := md.compare(m.Locks(file1)); err != nil {
			t.Fatalf("step %d after %s: %v", step, what, err)
		}
		checkShardOf(t, m, file1)
	}
}

func FuzzLockSequence(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 1, 5, 3})
	f.Add([]byte{0, 0, 0, 0, 0x80, 0, 10, 3, 3, 0, 4, 2})
	f.Add([]byte{0, 0x80, 0, 9, 0x80, 0x80, 0, 9, 3, 0x80, 0, 9, 6, 0x81, 2, 3})
	f.Add([]byte{0x80, 0x80, 3, 3, 0, 0x80, 3, 3, 0x46, 1, 0, 30, 7, 0x80, 0, 0, 0x47, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4*200 {
			data = data[:4*200]
		}
		runModel(t, data)
	})
}

// TestRandomSequences runs the model check over fixed pseudo-random
// sequences, so the property is exercised by every `go test`.
func TestRandomSequences(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 0x10c4))
		data := make([]byte, 4*150)
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, data) })
	}
}
