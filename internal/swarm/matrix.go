package swarm

import (
	_ "embed"
	"fmt"
	"math"
	"strings"

	"github.com/romap2p/romap2p/treebuild"
)

// tableI is Table I of the ROMA paper: end-to-end TCP throughput between
// nine PlanetLab sites in Mbit/s, one row per receiver.
//
//go:embed table1.tsv
var tableI string

// TableISource is the host the paper roots its Table I tree at.
const TableISource = "UW"

// TableI returns the paper's Table I as a rate matrix (bytes/s). The table
// carries no access caps; give them with Config.Uplink and Config.Downlink.
func TableI() (*treebuild.RateMatrix, error) {
	m, err := treebuild.ParseMatrix(strings.NewReader(tableI))
	if err != nil {
		return nil, fmt.Errorf("embedded table I: %w", err)
	}
	return m, nil
}

// Uniform returns a matrix of one source and n receivers named peer1,
// peer2, ... in which every ordered pair runs at rate bytes/s. A rate of 0
// leaves the pairs unmeasured, so that only access caps limit them.
func Uniform(source string, n int, rate float64) (*treebuild.RateMatrix, error) {
	if n < 1 || n > treebuild.MaxHosts-1 {
		return nil, fmt.Errorf("uniform swarm: %d receivers out of range [1, %d]", n, treebuild.MaxHosts-1)
	}
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("uniform swarm: rate %v is not a finite non-negative number", rate)
	}
	width := len(fmt.Sprint(n))
	names := []string{source}
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("peer%0*d", width, i))
	}
	m, err := treebuild.NewRateMatrix(names...)
	if err != nil {
		return nil, fmt.Errorf("uniform swarm: %w", err)
	}
	if rate > 0 {
		for i := range names {
			for j := range names {
				if i != j {
					m.SetRate(i, j, rate)
				}
			}
		}
	}
	return m, nil
}

// withDefaultCaps returns a copy of m in which every host without a cap of
// its own gets the default uplink and downlink (bytes/s; 0 leaves it
// uncapped).
func withDefaultCaps(m *treebuild.RateMatrix, up, down float64) (*treebuild.RateMatrix, error) {
	c, err := treebuild.NewRateMatrix(m.Hosts()...)
	if err != nil {
		return nil, err
	}
	for i := range m.Len() {
		for j := range m.Len() {
			if r, ok := m.PairRate(i, j); ok && i != j {
				c.SetRate(i, j, r)
			}
		}
		if u := m.Uplink(i); !math.IsInf(u, 1) {
			c.SetUplink(i, u)
		} else {
			c.SetUplink(i, up)
		}
		if d := m.Downlink(i); !math.IsInf(d, 1) {
			c.SetDownlink(i, d)
		} else {
			c.SetDownlink(i, down)
		}
	}
	return c, nil
}

// WidestParents returns the centralised widest-path tree of m rooted at
// source, with the default access caps applied to hosts without their own,
// as a Config.Parents map (receiver -> parent). Receivers the source cannot
// reach are left out.
func WidestParents(m *treebuild.RateMatrix, source string, uplink, downlink float64) (map[string]string, error) {
	src, ok := m.Index(source)
	if !ok {
		return nil, fmt.Errorf("widest parents: %q is not a host of the matrix", source)
	}
	c, err := withDefaultCaps(m, uplink, downlink)
	if err != nil {
		return nil, fmt.Errorf("widest parents: %w", err)
	}
	t, err := treebuild.WidestPathTree(c, src)
	if err != nil {
		return nil, fmt.Errorf("widest parents: %w", err)
	}
	parents := make(map[string]string)
	for h, p := range t.Parent {
		if p >= 0 {
			parents[c.Name(h)] = c.Name(p)
		}
	}
	return parents, nil
}
