package flowtable

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// Format is a view's output format.
type Format string

// The formats a view is written in.
const (
	FormatDOT  Format = "dot"
	FormatJSON Format = "json"
	FormatCSV  Format = "csv"
	FormatSVG  Format = "svg"
)

// GroupKind says how addresses become nodes.
type GroupKind int

// The groupings of Params.Group.
const (
	GroupAddr GroupKind = iota
	GroupCIDR
	GroupENI
	GroupAccount
)

// Group is how addresses become nodes; Bits4 and Bits6 are the prefix
// lengths of GroupCIDR.
type Group struct {
	Kind         GroupKind
	Bits4, Bits6 int
}

// String returns the group in the form the group parameter takes.
func (g Group) String() string {
	switch g.Kind {
	case GroupCIDR:
		return fmt.Sprintf("cidr:%d:%d", g.Bits4, g.Bits6)
	case GroupENI:
		return "eni"
	case GroupAccount:
		return "account"
	default:
		return "addr"
	}
}

// PortRange is an inclusive range of destination ports.
type PortRange struct{ Lo, Hi int }

// Params is one view: its format, grouping, filters and ranking, parsed
// from a query string. The zero value is the plain stored DOT.
type Params struct {
	// Format is the output format; empty means the caller did not say.
	Format Format
	// Group is how addresses become nodes.
	Group Group
	// Accept and Reject keep records with that action; neither set keeps all.
	Accept, Reject bool
	// Protocols, Ports, Addrs, Srcs and Dsts keep records matching any of
	// their entries; empty keeps all.
	Protocols []int
	Ports     []PortRange
	Addrs     []netip.Prefix
	Srcs      []netip.Prefix
	Dsts      []netip.Prefix
	// MinBytes keeps edges with at least that many bytes.
	MinBytes int64
	// Top keeps only the Top edges with the most bytes; zero keeps all.
	Top int

	// given lists the view parameters present in the query, for IsView.
	given bool
}

// viewParams are the query parameters that make a GET answer a view.
var viewParams = []string{"group", "action", "protocol", "port", "addr", "src", "dst", "min_bytes", "top"}

// ParamError names the query parameter that could not be parsed. It wraps
// types.ErrInvalidInput.
type ParamError struct {
	Param, Value, Reason string
}

// Error implements error.
func (e *ParamError) Error() string {
	return fmt.Sprintf("parameter %s=%q: %s", e.Param, truncate(e.Value, 64), e.Reason)
}

// Unwrap makes a ParamError match types.ErrInvalidInput.
func (e *ParamError) Unwrap() error { return types.ErrInvalidInput }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// maxListItems bounds a comma-separated list, so a query cannot make the
// filters slower than the table.
const maxListItems = 256

// ParseParams reads the view parameters of q; other parameters (the window)
// are left to the caller. Errors are *ParamError.
func ParseParams(q url.Values) (Params, error) {
	var p Params
	for _, name := range viewParams {
		if _, ok := q[name]; ok {
			p.given = true
		}
	}
	one := func(name string) (string, bool, error) {
		vs, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(vs) > 1 {
			return "", false, &ParamError{Param: name, Value: strings.Join(vs, ","), Reason: "is given more than once"}
		}
		return vs[0], true, nil
	}
	list := func(name string, each func(string) error) error {
		v, ok, err := one(name)
		if err != nil || !ok {
			return err
		}
		items := strings.Split(v, ",")
		if len(items) > maxListItems {
			return &ParamError{Param: name, Value: v, Reason: fmt.Sprintf("lists more than %d items", maxListItems)}
		}
		for _, item := range items {
			if err := each(strings.TrimSpace(item)); err != nil {
				return &ParamError{Param: name, Value: v, Reason: err.Error()}
			}
		}
		return nil
	}

	if v, ok, err := one("format"); err != nil {
		return p, err
	} else if ok {
		switch f := Format(strings.ToLower(v)); f {
		case FormatDOT, FormatJSON, FormatCSV, FormatSVG:
			p.Format = f
		default:
			return p, &ParamError{Param: "format", Value: v, Reason: "is not one of dot, json, csv, svg"}
		}
	}
	if v, ok, err := one("group"); err != nil {
		return p, err
	} else if ok {
		g, err := parseGroup(v)
		if err != nil {
			return p, &ParamError{Param: "group", Value: v, Reason: err.Error()}
		}
		p.Group = g
	}
	if err := list("action", func(s string) error {
		switch strings.ToUpper(s) {
		case "ACCEPT":
			p.Accept = true
		case "REJECT":
			p.Reject = true
		default:
			return errors.New("actions are ACCEPT and REJECT")
		}
		return nil
	}); err != nil {
		return p, err
	}
	if err := list("protocol", func(s string) error {
		n, err := parseProtocol(s)
		p.Protocols = append(p.Protocols, n)
		return err
	}); err != nil {
		return p, err
	}
	if err := list("port", func(s string) error {
		r, err := parsePortRange(s)
		p.Ports = append(p.Ports, r)
		return err
	}); err != nil {
		return p, err
	}
	for _, f := range []struct {
		name string
		dst  *[]netip.Prefix
	}{{"addr", &p.Addrs}, {"src", &p.Srcs}, {"dst", &p.Dsts}} {
		if err := list(f.name, func(s string) error {
			pfx, err := parsePrefix(s)
			*f.dst = append(*f.dst, pfx)
			return err
		}); err != nil {
			return p, err
		}
	}
	if v, ok, err := one("min_bytes"); err != nil {
		return p, err
	} else if ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || !digits(v) {
			return p, &ParamError{Param: "min_bytes", Value: v, Reason: "is not an integer of 0 or more"}
		}
		p.MinBytes = n
	}
	if v, ok, err := one("top"); err != nil {
		return p, err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || !digits(v) {
			return p, &ParamError{Param: "top", Value: v, Reason: "is not an integer of 1 or more"}
		}
		p.Top = n
	}
	p.normalize()
	return p, nil
}

// IsView reports whether p asks for a view rather than the stored DOT: any
// view parameter, or a format other than DOT.
func (p Params) IsView() bool {
	return p.given || (p.Format != "" && p.Format != FormatDOT)
}

// normalize sorts and dedups the lists, so equal views have equal
// canonical forms (and share a cached SVG).
func (p *Params) normalize() {
	slices.Sort(p.Protocols)
	p.Protocols = slices.Compact(p.Protocols)
	slices.SortFunc(p.Ports, func(a, b PortRange) int {
		if a.Lo != b.Lo {
			return a.Lo - b.Lo
		}
		return a.Hi - b.Hi
	})
	p.Ports = slices.Compact(p.Ports)
	for _, l := range []*[]netip.Prefix{&p.Addrs, &p.Srcs, &p.Dsts} {
		slices.SortFunc(*l, comparePrefix)
		*l = slices.Compact(*l)
	}
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func parseGroup(v string) (Group, error) {
	switch strings.ToLower(v) {
	case "addr":
		return Group{Kind: GroupAddr}, nil
	case "eni":
		return Group{Kind: GroupENI}, nil
	case "account":
		return Group{Kind: GroupAccount}, nil
	}
	rest, ok := strings.CutPrefix(strings.ToLower(v), "cidr:")
	if !ok {
		return Group{}, errors.New("is not addr, cidr:N, cidr:N:M, eni or account")
	}
	g := Group{Kind: GroupCIDR, Bits6: 64}
	n4, n6, two := strings.Cut(rest, ":")
	var err error
	if g.Bits4, err = strconv.Atoi(n4); err != nil || !digits(n4) || g.Bits4 < 0 || g.Bits4 > 32 {
		return Group{}, errors.New("the IPv4 prefix length N of cidr:N must be 0 to 32")
	}
	if two {
		if g.Bits6, err = strconv.Atoi(n6); err != nil || !digits(n6) || g.Bits6 < 0 || g.Bits6 > 128 {
			return Group{}, errors.New("the IPv6 prefix length M of cidr:N:M must be 0 to 128")
		}
	}
	return g, nil
}

// protocolNames are the protocols the protocol parameter knows by name.
var protocolNames = map[string]int{"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}

func parseProtocol(s string) (int, error) {
	if n, ok := protocolNames[strings.ToLower(s)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || !digits(s) || n < 0 || n > 255 {
		return 0, fmt.Errorf("%q is not a protocol number 0 to 255 or tcp, udp, icmp, icmpv6", truncate(s, 32))
	}
	return n, nil
}

func parsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || !digits(lo) || !digits(hi) || a < 0 || b > 65535 || a > b {
		return PortRange{}, fmt.Errorf("%q is not a port 0 to 65535 or a range LO-HI", truncate(s, 32))
	}
	return PortRange{Lo: a, Hi: b}, nil
}

// digits reports whether s is a plain decimal number, without the sign
// strconv.Atoi also takes.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CheckNames returns a *ParamError for the first parameter of q that is
// neither a view parameter, format, nor one of also (the caller's own), so
// a misspelt filter is refused rather than silently ignored.
func CheckNames(q url.Values, also ...string) error {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name != "format" && !slices.Contains(viewParams, name) && !slices.Contains(also, name) {
			return &ParamError{Param: strconv.Quote(truncate(name, 32)), Value: strings.Join(q[name], ","),
				Reason: "is not a view parameter (format, " + strings.Join(viewParams, ", ") + ")"}
		}
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", truncate(s, 64))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", truncate(s, 64))
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Canonical returns the view parameters in canonical form, as the JSON
// view's params attribute shows them: group always, the others when set.
func (p Params) Canonical() [][2]string {
	out := [][2]string{{"group", p.Group.String()}}
	if p.Group.Kind == GroupAddr {
		out[0][1] = "addr"
	}
	switch {
	case p.Accept && p.Reject:
		out = append(out, [2]string{"action", "ACCEPT,REJECT"})
	case p.Accept:
		out = append(out, [2]string{"action", "ACCEPT"})
	case p.Reject:
		out = append(out, [2]string{"action", "REJECT"})
	}
	if len(p.Protocols) > 0 {
		out = append(out, [2]string{"protocol", join(p.Protocols, strconv.Itoa)})
	}
	if len(p.Ports) > 0 {
		out = append(out, [2]string{"port", join(p.Ports, func(r PortRange) string {
			if r.Lo == r.Hi {
				return strconv.Itoa(r.Lo)
			}
			return strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi)
		})})
	}
	for _, f := range []struct {
		name string
		l    []netip.Prefix
	}{{"addr", p.Addrs}, {"src", p.Srcs}, {"dst", p.Dsts}} {
		if len(f.l) > 0 {
			out = append(out, [2]string{f.name, join(f.l, prefixString)})
		}
	}
	if p.MinBytes > 0 {
		out = append(out, [2]string{"min_bytes", strconv.FormatInt(p.MinBytes, 10)})
	}
	if p.Top > 0 {
		out = append(out, [2]string{"top", strconv.Itoa(p.Top)})
	}
	return out
}

// prefixString writes a single-address prefix as the address.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func join[T any](l []T, f func(T) string) string {
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = f(v)
	}
	return strings.Join(parts, ",")
}
