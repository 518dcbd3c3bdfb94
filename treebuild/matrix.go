package treebuild

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxHosts bounds the number of hosts a rate matrix may hold, so that a
// malformed or hostile file cannot make ParseMatrix allocate without limit.
const MaxHosts = 4096

// maxLine bounds one line of a matrix file.
const maxLine = 1 << 20

// RateMatrix holds the throughput between hosts: a measured rate per ordered
// pair (sender, receiver), plus optional per-host access caps: an uplink cap
// shared by all of a host's outgoing connections and a downlink cap shared by
// all of its incoming ones. All rates are bytes per second.
//
// The zero value is an empty matrix; use NewRateMatrix or ParseMatrix.
type RateMatrix struct {
	names []string
	index map[string]int
	rate  [][]float64 // rate[from][to]; NaN when the pair was not measured
	up    []float64   // 0 when unset
	down  []float64   // 0 when unset
}

// NewRateMatrix returns a matrix over the named hosts with no pair measured
// and no caps set.
func NewRateMatrix(names ...string) (*RateMatrix, error) {
	if len(names) > MaxHosts {
		return nil, fmt.Errorf("new rate matrix: %d hosts exceed the limit of %d", len(names), MaxHosts)
	}
	m := &RateMatrix{index: make(map[string]int, len(names))}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " \t\r\n") {
			return nil, fmt.Errorf("new rate matrix: invalid host name %q", n)
		}
		if _, dup := m.index[n]; dup {
			return nil, fmt.Errorf("new rate matrix: duplicate host %q", n)
		}
		m.index[n] = len(m.names)
		m.names = append(m.names, n)
	}
	n := len(names)
	m.rate = make([][]float64, n)
	for i := range m.rate {
		m.rate[i] = make([]float64, n)
		for j := range m.rate[i] {
			m.rate[i][j] = math.NaN()
		}
	}
	m.up = make([]float64, n)
	m.down = make([]float64, n)
	return m, nil
}

// Len returns the number of hosts.
func (m *RateMatrix) Len() int { return len(m.names) }

// Name returns the name of host i.
func (m *RateMatrix) Name(i int) string { return m.names[i] }

// Hosts returns the host names in index order.
func (m *RateMatrix) Hosts() []string { return append([]string(nil), m.names...) }

// Index returns the index of the named host.
func (m *RateMatrix) Index(name string) (int, bool) {
	i, ok := m.index[name]
	return i, ok
}

// SetRate records the measured rate from one host to another, in bytes per
// second. A negative or NaN rate removes the measurement.
func (m *RateMatrix) SetRate(from, to int, bytesPerSec float64) {
	if bytesPerSec < 0 || math.IsNaN(bytesPerSec) {
		bytesPerSec = math.NaN()
	}
	m.rate[from][to] = bytesPerSec
}

// PairRate returns the measured rate from one host to another and whether
// the pair was measured at all. Access caps are not applied.
func (m *RateMatrix) PairRate(from, to int) (float64, bool) {
	r := m.rate[from][to]
	return r, !math.IsNaN(r)
}

// SetUplink caps the total rate host h can send, in bytes per second; 0 or
// less removes the cap.
func (m *RateMatrix) SetUplink(h int, bytesPerSec float64) { m.up[h] = math.Max(bytesPerSec, 0) }

// SetDownlink caps the total rate host h can receive, in bytes per second; 0
// or less removes the cap.
func (m *RateMatrix) SetDownlink(h int, bytesPerSec float64) { m.down[h] = math.Max(bytesPerSec, 0) }

// Uplink returns the uplink cap of host h, +Inf when none is set.
func (m *RateMatrix) Uplink(h int) float64 { return capOrInf(m.up[h]) }

// Downlink returns the downlink cap of host h, +Inf when none is set.
func (m *RateMatrix) Downlink(h int) float64 { return capOrInf(m.down[h]) }

func capOrInf(c float64) float64 {
	if c <= 0 {
		return math.Inf(1)
	}
	return c
}

// Rate returns the rate of a single connection from one host to another
// when it is the only traffic on both access links: the measured pair rate,
// or the sender's uplink cap when the pair was not measured (0 when the
// sender has no cap either), bounded by the sender's uplink and the
// receiver's downlink. A host has no connection to itself: Rate(h, h) is 0.
func (m *RateMatrix) Rate(from, to int) float64 {
	if from == to {
		return 0
	}
	r, ok := m.PairRate(from, to)
	if !ok {
		r = m.up[from]
	}
	return math.Min(r, math.Min(m.Uplink(from), m.Downlink(to)))
}

// ParseMatrix reads a rate matrix in the tab- or space-separated format of
// the ROMA paper's Table I:
//
//	# comment lines start with '#'
//	# access HOST MBIT      (sets both access caps of HOST, Mbit/s)
//	# uplink HOST MBIT      (sets only the uplink cap)
//	# downlink HOST MBIT    (sets only the downlink cap)
//	receiver\sender  A     B     C
//	A                -     12.5  30
//	B                40.1  -     9.8
//
// The header's first field names the orientation: receiver\sender means one
// row per receiver and one column per sender; sender\receiver the opposite.
// Values are Mbit/s; "-" or "NA" marks an unmeasured pair, which then runs
// at the sender's uplink cap (see Rate). The diagonal is ignored. Hosts that
// appear only in a row or only in an access line are added after those of
// the header. Errors name the offending line.
func ParseMatrix(r io.Reader) (*RateMatrix, error) {
	type caps struct {
		host     string
		up, down float64
		line     int
	}
	var (
		header     []string
		perRow     bool // rows are receivers
		rows       = map[string][]float64{}
		rowOrder   []string
		access     []caps
		lineNo     int
		headerLine int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(strings.TrimPrefix(line, "#"))
			if len(f) == 0 || (f[0] != "access" && f[0] != "uplink" && f[0] != "downlink") {
				continue
			}
			if len(f) != 3 {
				return nil, fmt.Errorf("parse matrix: line %d: %q wants a host and a rate in Mbit/s", lineNo, f[0])
			}
			v, err := parseMbit(f[2])
			if err != nil || math.IsNaN(v) || v <= 0 {
				return nil, fmt.Errorf("parse matrix: line %d: %s rate %q is not a positive number", lineNo, f[0], f[2])
			}
			c := caps{host: f[1], line: lineNo}
			if f[0] != "downlink" {
				c.up = v
			}
			if f[0] != "uplink" {
				c.down = v
			}
			access = append(access, c)
			continue
		}
		f := strings.Fields(line)
		if header == nil {
			switch f[0] {
			case `receiver\sender`:
				perRow = true
			case `sender\receiver`:
			default:
				return nil, fmt.Errorf("parse matrix: line %d: header must start with receiver\\sender or sender\\receiver, got %q", lineNo, f[0])
			}
			if len(f) < 2 {
				return nil, fmt.Errorf("parse matrix: line %d: header names no host", lineNo)
			}
			if len(f)-1 > MaxHosts {
				return nil, fmt.Errorf("parse matrix: line %d: %d hosts exceed the limit of %d", lineNo, len(f)-1, MaxHosts)
			}
			seen := map[string]bool{}
			for _, h := range f[1:] {
				if seen[h] {
					return nil, fmt.Errorf("parse matrix: line %d: duplicate host %q in header", lineNo, h)
				}
				seen[h] = true
			}
			header, headerLine = f[1:], lineNo
			continue
		}
		if len(f) != len(header)+1 {
			return nil, fmt.Errorf("parse matrix: line %d: row %q has %d values, header (line %d) has %d hosts", lineNo, f[0], len(f)-1, headerLine, len(header))
		}
		if _, dup := rows[f[0]]; dup {
			return nil, fmt.Errorf("parse matrix: line %d: duplicate row for host %q", lineNo, f[0])
		}
		vals := make([]float64, len(header))
		for j, s := range f[1:] {
			v, err := parseMbit(s)
			if err != nil {
				return nil, fmt.Errorf("parse matrix: line %d: row %q column %q: %w", lineNo, f[0], header[j], err)
			}
			vals[j] = v
		}
		rows[f[0]] = vals
		rowOrder = append(rowOrder, f[0])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse matrix: after line %d: %w", lineNo, err)
	}
	if header == nil {
		return nil, errors.New("parse matrix: no header row")
	}

	names := append([]string(nil), header...)
	known := map[string]bool{}
	for _, h := range names {
		known[h] = true
	}
	addHost := func(h string) {
		if !known[h] {
			known[h] = true
			names = append(names, h)
		}
	}
	for _, h := range rowOrder {
		addHost(h)
	}
	for _, c := range access {
		addHost(c.host)
	}
	m, err := NewRateMatrix(names...)
	if err != nil {
		return nil, fmt.Errorf("parse matrix: %w", err)
	}
	for _, rh := range rowOrder {
		i := m.index[rh]
		for j, v := range rows[rh] {
			k := m.index[header[j]]
			if i == k {
				continue // the diagonal: two hosts at one site, not a link
			}
			if perRow {
				m.SetRate(k, i, FromMbit(v))
			} else {
				m.SetRate(i, k, FromMbit(v))
			}
		}
	}
	for _, c := range access {
		h := m.index[c.host]
		if c.up > 0 {
			m.SetUplink(h, FromMbit(c.up))
		}
		if c.down > 0 {
			m.SetDownlink(h, FromMbit(c.down))
		}
	}
	return m, nil
}

// parseMbit parses one matrix cell: a non-negative finite number, or "-" /
// "NA" for an unmeasured pair (returned as NaN).
func parseMbit(s string) (float64, error) {
	if s == "-" || strings.EqualFold(s, "NA") {
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || v < 0 {
		return 0, fmt.Errorf("%q is not a non-negative rate in Mbit/s", s)
	}
	return v, nil
}

// WriteTo writes the matrix in the format ParseMatrix reads (one row per
// receiver, Mbit/s, access caps as comment lines), so that
// ParseMatrix(WriteTo(m)) reproduces m.
func (m *RateMatrix) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for i, h := range m.names {
		switch up, down := m.up[i], m.down[i]; {
		case up > 0 && up == down:
			fmt.Fprintf(&b, "# access %s %s\n", h, fmtMbit(up))
		default:
			if up > 0 {
				fmt.Fprintf(&b, "# uplink %s %s\n", h, fmtMbit(up))
			}
			if down > 0 {
				fmt.Fprintf(&b, "# downlink %s %s\n", h, fmtMbit(down))
			}
		}
	}
	b.WriteString(`receiver\sender`)
	for _, h := range m.names {
		b.WriteString("\t" + h)
	}
	b.WriteByte('\n')
	for to, h := range m.names {
		b.WriteString(h)
		for from := range m.names {
			r, ok := m.PairRate(from, to)
			if from == to || !ok {
				b.WriteString("\t-")
				continue
			}
			b.WriteString("\t" + fmtMbit(r))
		}
		b.WriteByte('\n')
	}
	n, err := io.WriteString(w, b.String())
	if err != nil {
		return int64(n), fmt.Errorf("write rate matrix: %w", err)
	}
	return int64(n), nil
}

func fmtMbit(bytesPerSec float64) string {
	return strconv.FormatFloat(Mbit(bytesPerSec), 'g', -1, 64)
}
