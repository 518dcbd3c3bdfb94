package treebuild

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
)

func loadTable1(t testing.TB) *RateMatrix {
	t.Helper()
	f, err := os.Open("testdata/table1.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ParseMatrix(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func idx(t testing.TB, m *RateMatrix, name string) int {
	t.Helper()
	i, ok := m.Index(name)
	if !ok {
		t.Fatalf("no host %q", name)
	}
	return i
}

func TestParseTable1(t *testing.T) {
	m := loadTable1(t)
	if m.Len() != 9 {
		t.Fatalf("%d hosts, want 9", m.Len())
	}
	// Row = receiver, column = sender: checked against the paper's text.
	for _, c := range []struct {
		from, to string
		mbit     float64
	}{
		{"BU", "GT", 53.9}, {"BU", "Duke", 40.9}, {"GT", "Duke", 31.8},
		{"BU", "UTK", 47.0}, {"UTK", "BU", 19.0}, {"UW", "UCLA", 39},
		{"UW", "Berkeley", 38.4},
	} {
		if got := Mbit(m.Rate(idx(t, m, c.from), idx(t, m, c.to))); !near(got, c.mbit, 1e-9) {
			t.Errorf("%s->%s = %g Mbit/s, want %g", c.from, c.to, got, c.mbit)
		}
	}
	uw, bu := idx(t, m, "UW"), idx(t, m, "BU")
	if _, ok := m.PairRate(bu, uw); ok {
		t.Error("UW is only a sender: BU->UW should be unmeasured")
	}
	if r := m.Rate(bu, uw); r != 0 {
		t.Errorf("unmeasured pair without uplink cap = %g, want 0", r)
	}
	if r := m.Rate(bu, bu); r != 0 {
		t.Errorf("diagonal = %g, want 0", r)
	}
	if !math.IsInf(m.Uplink(bu), 1) || !math.IsInf(m.Downlink(bu), 1) {
		t.Error("Table I sets no access caps")
	}
}

func TestParseAccessAndFallback(t *testing.T) {
	in := `# access A 100
# uplink B 10
# downlink C 5
sender\receiver	A	B	C
A	-	50	200
B	NA	-	-
`
	m, err := ParseMatrix(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := idx(t, m, "A"), idx(t, m, "B"), idx(t, m, "C")
	for _, x := range []struct {
		name      string
		got, want float64
	}{
		{"A->B", m.Rate(a, b), 50},
		{"A->C capped by C's downlink", m.Rate(a, c), 5},
		{"B->C missing: B's uplink, then C's downlink", m.Rate(b, c), 5},
		{"B->A missing: B's uplink", m.Rate(b, a), 10},
		{"C->A missing, C has no uplink cap", m.Rate(c, a), 0},
		{"A uplink", m.Uplink(a), 100},
		{"A downlink", m.Downlink(a), 100},
		{"B uplink", m.Uplink(b), 10},
	} {
		if got := Mbit(x.got); !near(got, x.want, 1e-9) && !(x.want == 0 && got == 0) {
			t.Errorf("%s = %g Mbit/s, want %g", x.name, got, x.want)
		}
	}
	if !math.IsInf(m.Downlink(b), 1) {
		t.Error("uplink line must not set the downlink")
	}
}

func TestParseAddsHosts(t *testing.T) {
	in := "# access Z 20\nreceiver\\sender A B\nC 1 2\n"
	m, err := ParseMatrix(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Hosts(), ","); got != "A,B,C,Z" {
		t.Fatalf("hosts %s, want A,B,C,Z", got)
	}
	if got := Mbit(m.Rate(idx(t, m, "Z"), idx(t, m, "C"))); got != 20 {
		t.Errorf("Z->C falls back to Z's uplink: %g", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"empty", "# nothing\n", "no header"},
		{"bad corner", "from\\to A B\n", "line 1: header must start"},
		{"no hosts", "receiver\\sender\n", "line 1: header names no host"},
		{"dup header", "receiver\\sender A A\n", "line 1: duplicate host"},
		{"short row", "# c\nreceiver\\sender A B\nA 1\n", "line 3: row \"A\" has 1 values"},
		{"bad value", "receiver\\sender A B\nA 1 x\n", "line 2: row \"A\" column \"B\""},
		{"negative", "receiver\\sender A B\nA 1 -3\n", "line 2"},
		{"inf", "receiver\\sender A B\nA 1 Inf\n", "line 2"},
		{"dup row", "receiver\\sender A B\nA 1 2\nA 1 2\n", "line 3: duplicate row"},
		{"access arity", "# access A\nreceiver\\sender A\n", "line 1: \"access\" wants"},
		{"access value", "# access A fast\nreceiver\\sender A\n", "line 1: access rate"},
		{"access zero", "receiver\\sender A\n# uplink A 0\n", "line 2: uplink rate"},
		{"long line", "receiver\\sender A " + strings.Repeat("x", 2<<20) + "\n", "after line 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseMatrix(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseTooManyHosts(t *testing.T) {
	var b strings.Builder
	b.WriteString(`receiver\sender`)
	for i := range MaxHosts + 1 {
		fmt.Fprintf(&b, " h%d", i)
	}
	_, err := ParseMatrix(strings.NewReader(b.String()))
	if err == nil || !strings.Contains(err.Error(), "exceed the limit") {
		t.Fatalf("error %v, want a host limit error", err)
	}
}

func TestWriteToRoundTrip(t *testing.T) {
	m := loadTable1(t)
	m.SetUplink(idx(t, m, "UW"), FromMbit(100))
	m.SetDownlink(idx(t, m, "UW"), FromMbit(100))
	m.SetUplink(idx(t, m, "BU"), FromMbit(40))
	m.SetDownlink(idx(t, m, "Duke"), FromMbit(30))
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	m2, err := ParseMatrix(&buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if strings.Join(m.Hosts(), ",") != strings.Join(m2.Hosts(), ",") {
		t.Fatalf("hosts %v != %v", m.Hosts(), m2.Hosts())
	}
	for i := range m.Len() {
		if !near(m.Uplink(i), m2.Uplink(i), 1e-12) && !math.IsInf(m.Uplink(i), 1) ||
			!near(m.Downlink(i), m2.Downlink(i), 1e-12) && !math.IsInf(m.Downlink(i), 1) {
			t.Errorf("%s caps differ", m.Name(i))
		}
		for j := range m.Len() {
			a, aok := m.PairRate(i, j)
			b, bok := m2.PairRate(i, j)
			if i != j && (aok != bok || aok && !near(a, b, 1e-12)) {
				t.Errorf("%s->%s: %g/%v vs %g/%v", m.Name(i), m.Name(j), a, aok, b, bok)
			}
		}
	}
}

func TestNewRateMatrixErrors(t *testing.T) {
	if _, err := NewRateMatrix("a", "a"); err == nil {
		t.Error("duplicate host accepted")
	}
	if _, err := NewRateMatrix("a b"); err == nil {
		t.Error("host name with a space accepted")
	}
}
