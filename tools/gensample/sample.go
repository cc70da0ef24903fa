package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog/flowlogtest"
)

var (
	// windowStart and windowStop are the hour the sample is about; the
	// README tells users to ask for this window.
	windowStart = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	windowStop  = windowStart.Add(time.Hour)
)

const (
	// seed fixes the random choices, so the sample is the same every run.
	seed = 20261101
	// interval is how often a flow log publishes a file in the sample; AWS
	// aggregates over at most ten minutes.
	interval = 10 * time.Minute
	// digestFile and readmeFile are written next to the AWSLogs folder.
	digestFile = "expected-digest.txt"
	readmeFile = "README.md"
)

// defaultFields is the default (version 2) format, as AWS names its fields in
// the header line of every file it delivers to S3.
var defaultFields = []string{
	"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
	"protocol", "packets", "bytes", "start", "end", "action", "log-status",
}

// customFields is a version 5 custom format in an order of its own, with
// fields the digest does not use (and bytes before packets), as a user may
// configure it.
var customFields = []string{
	"version", "vpc-id", "subnet-id", "interface-id", "account-id", "type", "srcaddr", "dstaddr",
	"srcport", "dstport", "pkt-srcaddr", "pkt-dstaddr", "protocol", "bytes", "packets",
	"start", "end", "action", "tcp-flags", "log-status", "flow-direction",
}

// parquetFields are the columns of the sample's Parquet flow log: a
// version 5 custom format, as AWS writes it with FileFormat=parquet (each
// column named after its field, with underscores).
var parquetFields = []string{
	"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
	"protocol", "packets", "bytes", "start", "end", "action", "log-status",
	"vpc-id", "subnet-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr", "flow-direction",
}

// parquetInt32Fields are the integer columns AWS writes as INT32; the
// counters and times are INT64.
var parquetInt32Fields = []string{"version", "srcport", "dstport", "protocol", "tcp-flags"}

// record is one flow log line.
type record struct {
	Version           int
	Account, ENI      string
	Src, Dst          netip.Addr // invalid for NODATA and SKIPDATA
	SrcPort, DstPort  int
	Protocol          int
	Packets, Bytes    int64
	Start, End        int64 // unix seconds
	Action, Status    string
	VPC, Subnet       string
	PktSrc, PktDst    netip.Addr
	TCPFlags          int
	Direction         string // ingress or egress, seen from the interface
	hasFlow, hasFlags bool
}

// file is one flow log file of the sample.
type file struct {
	key     string // slash path under the sample folder
	gz      bool
	parquet bool // written as AWS's Parquet files, nulls for "-"
	header  bool // write the field names as the first line, as AWS does
	fields  []string
	records []record
}

// conv is a conversation an interface takes part in, repeated with new
// ephemeral ports in every interval it shows up in.
type conv struct {
	peer    netip.Addr
	port    int // the service port
	proto   int // 6 TCP, 17 UDP, 1 ICMP
	inbound bool
	action  string
	oneWay  bool       // no reply record: rejected traffic, or a reply the flow log does not see
	srcPort int        // the client's port when fixed (NTP from 123); 0 picks an ephemeral one
	pktPeer netip.Addr // the original peer behind a load balancer (custom format only)
}

// eni is one network interface and what it talks to.
type eni struct {
	id, subnet string
	addr       netip.Addr
	convs      []conv
	// noData and skipData are the interval starts in which the interface
	// logs a NODATA or SKIPDATA line instead of traffic.
	noData, skipData []time.Time
}

// flowLog is one flow log: an account's interfaces in one region, delivered
// in one layout and format.
type flowLog struct {
	account, region, id, vpc string
	hive, hourly, gz         bool
	custom                   bool
	parquet                  bool          // FileFormat=parquet: .log.parquet files
	delay                    time.Duration // from an interval's end to its file's name timestamp
	enis                     []eni
}

// sample is the whole generated tree.
type sample struct {
	files []*file
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// at returns 2026-11-01 at hh:mm UTC.
func at(hh, mm int) time.Time { return time.Date(2026, 11, 1, hh, mm, 0, 0, time.UTC) }

// flowLogs describes the sample's accounts.
func flowLogs() []flowLog {
	web, app, db := addr("10.1.1.10"), addr("10.1.2.20"), addr("10.1.3.30")
	return []flowLog{
		{
			// A production account: the classic layout, one folder per day.
			account: "111122223333", region: "us-east-1", id: "fl-0a1b2c3d4e5f60718", vpc: "vpc-0a1b2c3d",
			gz: true, delay: 2 * time.Minute,
			enis: []eni{
				{id: "eni-0a1b2c3d4e5f60001", subnet: "subnet-0a01", addr: web, convs: []conv{
					{peer: addr("198.51.100.7"), port: 443, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("198.51.100.23"), port: 443, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("198.51.100.54"), port: 443, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("203.0.113.9"), port: 80, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("192.0.2.66"), port: 22, proto: 6, inbound: true, action: "REJECT", oneWay: true},
					{peer: app, port: 8080, proto: 6, action: "ACCEPT"},
				}},
				{id: "eni-0a1b2c3d4e5f60002", subnet: "subnet-0a02", addr: app, convs: []conv{
					{peer: web, port: 8080, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: db, port: 5432, proto: 6, action: "ACCEPT"},
					{peer: addr("203.0.113.200"), port: 443, proto: 6, action: "ACCEPT"},
					{peer: addr("10.1.0.2"), port: 53, proto: 17, action: "ACCEPT"},
				}},
				{id: "eni-0a1b2c3d4e5f60003", subnet: "subnet-0a03", addr: db, convs: []conv{
					{peer: app, port: 5432, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: web, port: 5432, proto: 6, inbound: true, action: "REJECT", oneWay: true},
				}, noData: []time.Time{at(10, 20), at(10, 30)}},
			},
		},
		{
			// A staging account: the Hive-compatible layout with hourly folders,
			// and an IPv6 interface.
			account: "444455556666", region: "us-west-2", id: "fl-0f1e2d3c4b5a69788", vpc: "vpc-0f1e2d3c",
			hive: true, hourly: true, gz: true, delay: 3 * time.Minute,
			enis: []eni{
				{id: "eni-0f1e2d3c4b5a60001", subnet: "subnet-0b01", addr: addr("10.2.0.5"), convs: []conv{
					{peer: addr("198.51.100.77"), port: 22, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("203.0.113.45"), port: 22, proto: 6, inbound: true, action: "REJECT", oneWay: true},
					{peer: addr("203.0.113.99"), port: 22, proto: 6, inbound: true, action: "REJECT", oneWay: true},
					{peer: addr("192.0.2.14"), port: 0, proto: 1, inbound: true, action: "ACCEPT"},
				}},
				{id: "eni-0f1e2d3c4b5a60002", subnet: "subnet-0b02", addr: addr("2001:db8:2::10"), convs: []conv{
					{peer: addr("2001:db8:ffff::1"), port: 443, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("2001:db8:ffff::2"), port: 443, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("2001:db8:ffff::bad"), port: 23, proto: 6, inbound: true, action: "REJECT", oneWay: true},
				}},
				{id: "eni-0f1e2d3c4b5a60003", subnet: "subnet-0b03", addr: addr("10.2.1.40"), convs: []conv{
					{peer: app, port: 8080, proto: 6, action: "ACCEPT"},
					{peer: addr("192.0.2.123"), port: 123, proto: 17, action: "ACCEPT", srcPort: 123},
					{peer: addr("10.2.1.50"), port: 6379, proto: 6, action: "ACCEPT"},
				}, skipData: []time.Time{at(10, 40)}},
			},
		},
		{
			// A shared-services account: classic layout with hourly folders,
			// plain (not compressed) files.
			account: "777788889999", region: "eu-west-1", id: "fl-0c3d4e5f6a7b8c9d0", vpc: "vpc-0c3d4e5f",
			hourly: true, delay: time.Minute,
			enis: []eni{
				{id: "eni-0c3d4e5f6a7b80001", subnet: "subnet-0c01", addr: addr("10.3.0.9"), convs: []conv{
					{peer: addr("203.0.113.150"), port: 443, proto: 6, action: "ACCEPT"},
					{peer: addr("203.0.113.151"), port: 443, proto: 6, action: "ACCEPT"},
					{peer: addr("10.3.4.4"), port: 443, proto: 6, inbound: true, action: "ACCEPT"},
				}},
				{id: "eni-0c3d4e5f6a7b80002", subnet: "subnet-0c02", addr: addr("10.3.4.4"), convs: []conv{
					{peer: addr("203.0.113.150"), port: 443, proto: 6, action: "ACCEPT"},
					{peer: addr("198.51.100.25"), port: 25, proto: 6, action: "REJECT", oneWay: true},
				}},
			},
		},
		{
			// The same account's second flow log, in a custom format.
			account: "777788889999", region: "eu-west-1", id: "fl-0e5f6a7b8c9d0e1f2", vpc: "vpc-0c3d4e5f",
			hourly: true, gz: true, custom: true, delay: 4 * time.Minute,
			enis: []eni{
				{id: "eni-0c3d4e5f6a7b80003", subnet: "subnet-0c03", addr: addr("10.3.5.5"), convs: []conv{
					{peer: addr("10.3.0.200"), pktPeer: addr("198.51.100.3"), port: 8443, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("10.3.0.200"), pktPeer: addr("198.51.100.4"), port: 8443, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("10.3.6.6"), port: 5432, proto: 6, action: "ACCEPT"},
				}},
				{id: "eni-0c3d4e5f6a7b80004", subnet: "subnet-0c04", addr: addr("10.3.6.6"), convs: []conv{
					{peer: addr("10.3.5.5"), port: 5432, proto: 6, inbound: true, action: "ACCEPT"},
					{peer: addr("192.0.2.200"), port: 3389, proto: 6, inbound: true, action: "REJECT", oneWay: true},
				}, noData: []time.Time{at(10, 50)}},
			},
		},
	}
}

// newSample generates the sample: for every flow log, one file per ten
// minutes from 09:50 to 11:10 (so the window's edges are crossed), a file
// delivered late, and files far outside the window that must never be read.
func newSample() *sample {
	rng := rand.New(rand.NewPCG(seed, seed))
	s := &sample{}
	for _, fl := range flowLogs() {
		s.addFlowLog(rng, fl)
	}
	s.addEdges(rng)
	// The Parquet flow log draws from its own sequence, so that adding it
	// left the text files as they were.
	prng := rand.New(rand.NewPCG(seed, seed+1))
	s.addFlowLog(prng, parquetFlowLog())
	slices.SortFunc(s.files, func(a, b *file) int { return strings.Compare(a.key, b.key) })
	return s
}

// addFlowLog adds fl's files, one per ten minutes from 09:50 to 11:10.
func (s *sample) addFlowLog(rng *rand.Rand, fl flowLog) {
	for from := at(9, 50); from.Before(at(11, 10)); from = from.Add(interval) {
		f := fl.newFile(from.Add(interval + fl.delay))
		for _, e := range fl.enis {
			f.records = append(f.records, fl.traffic(rng, e, from)...)
		}
		s.files = append(s.files, f)
	}
}

// parquetFlowLog is an account that delivers Parquet files: the
// Hive-compatible layout with daily folders, as AWS offers it for Parquet.
func parquetFlowLog() flowLog {
	return flowLog{
		account: "222233334444", region: "ap-southeast-2", id: "fl-0d4e5f6a7b8c9d0e1", vpc: "vpc-0d4e5f6a",
		hive: true, parquet: true, delay: 5 * time.Minute,
		enis: []eni{
			{id: "eni-0d4e5f6a7b8c90001", subnet: "subnet-0d01", addr: addr("10.4.0.7"), convs: []conv{
				{peer: addr("198.51.100.88"), port: 443, proto: 6, inbound: true, action: "ACCEPT"},
				{peer: addr("10.4.1.8"), port: 9092, proto: 6, action: "ACCEPT"},
				{peer: addr("203.0.113.77"), port: 3306, proto: 6, inbound: true, action: "REJECT", oneWay: true},
			}},
			{id: "eni-0d4e5f6a7b8c90002", subnet: "subnet-0d02", addr: addr("10.4.1.8"), convs: []conv{
				{peer: addr("10.4.0.7"), port: 9092, proto: 6, inbound: true, action: "ACCEPT"},
				{peer: addr("10.1.2.20"), port: 8080, proto: 6, action: "ACCEPT"},
			}, noData: []time.Time{at(10, 30)}},
		},
	}
}

// addEdges adds the records that test the window's edges and the files that
// test which files are read.
func (s *sample) addEdges(rng *rand.Rand) {
	fls := flowLogs()
	prod, staging, shared := fls[0], fls[1], fls[2]
	web, app := prod.enis[0], prod.enis[1]
	// find returns the regular file of fl named name; newSample made one for
	// every interval, so it exists.
	find := func(fl flowLog, name time.Time) *file {
		key := fl.newFile(name).key
		i := slices.IndexFunc(s.files, func(f *file) bool { return f.key == key })
		return s.files[i]
	}
	client := web.convs[0]
	edge := func(start, end time.Time) record {
		return prod.record(web, client, 51000, start.Unix(), end.Unix(), 10, 5200)
	}
	// Ends exactly when the window starts: overlaps it (End >= start).
	first := find(prod, at(10, 2))
	first.records = append(first.records,
		edge(at(9, 59).Add(5*time.Second), at(10, 0)),
		// Ends a second before: outside.
		edge(at(9, 59), at(9, 59).Add(59*time.Second)))
	// Starts a second before the window stops and ends after: inside.
	last := find(prod, at(11, 2))
	last.records = append(last.records, edge(at(10, 59).Add(30*time.Second), at(11, 0).Add(25*time.Second)))
	// Starts exactly when the window stops: outside (Start < stop fails).
	after := find(prod, at(11, 12))
	after.records = append(after.records, edge(at(11, 0), at(11, 0).Add(40*time.Second)))

	// Delivered late: flows of 10:4x in a file named 11:25, inside the slack.
	late := prod.newFile(at(11, 25))
	late.records = prod.traffic(rng, app, at(10, 40))
	s.files = append(s.files, late)

	// Far outside the window: the day before, hours later, and just beyond
	// the hour of slack. Their records are their own time's, so reading them
	// would not change the digest; the digester should not even list them.
	for _, far := range []struct {
		fl   flowLog
		name time.Time
	}{
		{prod, time.Date(2026, 10, 31, 23, 55, 0, 0, time.UTC)},
		{staging, at(13, 13)},
		{shared, at(8, 31)},
		{shared, at(12, 5)},
	} {
		f := far.fl.newFile(far.name)
		for _, e := range far.fl.enis {
			f.records = append(f.records, far.fl.traffic(rng, e, far.name.Add(-interval-far.fl.delay))...)
		}
		s.files = append(s.files, f)
	}

	// One default-format file without its header line, as a hand-made copy
	// may be: the reader falls back to the default fields.
	find(shared, at(10, 21)).header = false
}

// newFile returns an empty file of the flow log named for the time name.
func (fl flowLog) newFile(name time.Time) *file {
	stamp := name.UTC().Format("20060102T1504Z")
	h := fnv.New32a()
	_, _ = h.Write([]byte(fl.account + fl.id + stamp))
	base := fmt.Sprintf("%s_vpcflowlogs_%s_%s_%s_%08x.log", fl.account, fl.region, fl.id, stamp, h.Sum32())
	switch {
	case fl.parquet:
		base += ".parquet"
	case fl.gz:
		base += ".gz"
	}
	var dir string
	if fl.hive {
		dir = fmt.Sprintf("AWSLogs/aws-account-id=%s/aws-service=vpcflowlogs/aws-region=%s/%s",
			fl.account, fl.region, name.Format("year=2006/month=01/day=02"))
		if fl.hourly {
			dir += name.Format("/hour=15")
		}
	} else {
		dir = fmt.Sprintf("AWSLogs/%s/vpcflowlogs/%s/%s", fl.account, fl.region, name.Format("2006/01/02"))
		if fl.hourly {
			dir += name.Format("/15")
		}
	}
	fields := defaultFields
	switch {
	case fl.parquet:
		fields = parquetFields
	case fl.custom:
		fields = customFields
	}
	return &file{key: dir + "/" + base, gz: fl.gz, parquet: fl.parquet, header: true, fields: fields}
}

// traffic returns the records interface e logs in the interval starting at
// from: for most of its conversations one or two connections, each a request
// record and (unless one-way) a reply record; or a NODATA or SKIPDATA line.
func (fl flowLog) traffic(rng *rand.Rand, e eni, from time.Time) []record {
	to := from.Add(interval)
	if slices.ContainsFunc(e.noData, from.Equal) || slices.ContainsFunc(e.skipData, from.Equal) {
		status := "NODATA"
		if slices.ContainsFunc(e.skipData, from.Equal) {
			status = "SKIPDATA"
		}
		return []record{{
			Version: fl.version(), Account: fl.account, ENI: e.id, VPC: fl.vpc, Subnet: e.subnet,
			Start: from.Unix(), End: to.Unix(), Status: status,
		}}
	}
	var recs []record
	for _, c := range e.convs {
		if rng.IntN(10) < 3 {
			continue
		}
		for range 1 + rng.IntN(2) {
			eph := 32768 + rng.IntN(28232)
			if c.srcPort != 0 {
				eph = c.srcPort
			}
			if c.proto == 1 {
				eph = 0
			}
			start := from.Unix() + rng.Int64N(481)
			end := start + 20 + rng.Int64N(61)
			packets := 1 + rng.Int64N(40)
			size := int64(40 + rng.IntN(1400))
			if c.action == "REJECT" {
				packets = 1 + rng.Int64N(3)
				size = 44 + rng.Int64N(20)
			}
			recs = append(recs, fl.record(e, c, eph, start, end, packets, packets*size))
			if !c.oneWay {
				reply := fl.record(e, c, eph, start, end, packets+rng.Int64N(5), (packets+2)*int64(60+rng.IntN(1400)))
				reply.Src, reply.Dst = reply.Dst, reply.Src
				reply.SrcPort, reply.DstPort = reply.DstPort, reply.SrcPort
				reply.PktSrc, reply.PktDst = reply.PktDst, reply.PktSrc
				reply.Direction = map[string]string{"ingress": "egress", "egress": "ingress"}[reply.Direction]
				reply.TCPFlags = 19 // SYN-ACK and FIN
				recs = append(recs, reply)
			}
		}
	}
	return recs
}

// record returns the request record of a connection of conversation c on
// interface e, from the client's port eph to the service port.
func (fl flowLog) record(e eni, c conv, eph int, start, end, packets, bytes int64) record {
	r := record{
		Version: fl.version(), Account: fl.account, ENI: e.id, VPC: fl.vpc, Subnet: e.subnet,
		Protocol: c.proto, Packets: packets, Bytes: bytes, Start: start, End: end,
		Action: c.action, Status: "OK", hasFlow: true,
	}
	local, peer := e.addr, c.peer
	pktPeer := c.peer
	if c.pktPeer.IsValid() {
		pktPeer = c.pktPeer
	}
	if c.inbound {
		r.Src, r.Dst, r.SrcPort, r.DstPort = peer, local, eph, c.port
		r.PktSrc, r.PktDst = pktPeer, local
		r.Direction = "ingress"
	} else {
		r.Src, r.Dst, r.SrcPort, r.DstPort = local, peer, eph, c.port
		r.PktSrc, r.PktDst = local, pktPeer
		r.Direction = "egress"
	}
	if c.proto == 6 {
		r.hasFlags = true
		r.TCPFlags = 3 // SYN and FIN
		if c.action == "REJECT" {
			r.TCPFlags = 2 // SYN only
		}
	}
	return r
}

func (fl flowLog) version() int {
	if fl.custom || fl.parquet {
		return 5
	}
	return 2
}

// line renders r in the given format, "-" for what it has no value for.
func (r record) line(fields []string) string {
	vals := make([]string, len(fields))
	for i, f := range fields {
		vals[i] = r.field(f)
	}
	return strings.Join(vals, " ")
}

func (r record) field(name string) string {
	flow := func(s string) string {
		if !r.hasFlow {
			return "-"
		}
		return s
	}
	switch name {
	case "version":
		return strconv.Itoa(r.Version)
	case "account-id":
		return r.Account
	case "interface-id":
		return r.ENI
	case "vpc-id":
		return r.VPC
	case "subnet-id":
		return r.Subnet
	case "srcaddr":
		return flow(r.Src.String())
	case "dstaddr":
		return flow(r.Dst.String())
	case "pkt-srcaddr":
		return flow(r.PktSrc.String())
	case "pkt-dstaddr":
		return flow(r.PktDst.String())
	case "srcport":
		return flow(strconv.Itoa(r.SrcPort))
	case "dstport":
		return flow(strconv.Itoa(r.DstPort))
	case "protocol":
		return flow(strconv.Itoa(r.Protocol))
	case "packets":
		return flow(strconv.FormatInt(r.Packets, 10))
	case "bytes":
		return flow(strconv.FormatInt(r.Bytes, 10))
	case "start":
		return strconv.FormatInt(r.Start, 10)
	case "end":
		return strconv.FormatInt(r.End, 10)
	case "action":
		return flow(r.Action)
	case "log-status":
		return r.Status
	case "type":
		if !r.hasFlow {
			return "-"
		}
		if r.Src.Is4() {
			return "IPv4"
		}
		return "IPv6"
	case "tcp-flags":
		if !r.hasFlags {
			return flow("0")
		}
		return strconv.Itoa(r.TCPFlags)
	case "flow-direction":
		return flow(r.Direction)
	}
	return "-"
}

// content returns the file's bytes: the header line (if any) and one line
// per record, gzip-compressed with a fixed header (no name, no time) when the
// file is .gz, so the bytes are the same every run.
func (f *file) content() ([]byte, error) {
	if f.parquet {
		return f.parquetContent()
	}
	var plain bytes.Buffer
	if f.header {
		plain.WriteString(strings.Join(f.fields, " ") + "\n")
	}
	for _, r := range f.records {
		plain.WriteString(r.line(f.fields) + "\n")
	}
	if !f.gz {
		return plain.Bytes(), nil
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("gzip %s: %w", f.key, err)
	}
	zw.ModTime = time.Time{}
	if _, err := zw.Write(plain.Bytes()); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", f.key, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", f.key, err)
	}
	return out.Bytes(), nil
}

// parquetContent returns the file as AWS writes it in Parquet: one
// nullable column per field, GZIP pages, "-" as a null.
func (f *file) parquetContent() ([]byte, error) {
	rows := make([][]any, len(f.records))
	for i, r := range f.records {
		row := make([]any, len(f.fields))
		for j, name := range f.fields {
			v := r.field(name)
			switch {
			case v == "-":
			case flowlogtest.IsIntField(name):
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s: field %s: %w", f.key, name, err)
				}
				row[j] = n
			default:
				row[j] = v
			}
		}
		rows[i] = row
	}
	var out bytes.Buffer
	err := flowlogtest.WriteParquet(&out, flowlogtest.ParquetFile{
		Fields: f.fields, Int32Fields: parquetInt32Fields, Optional: true, Codec: &parquet.Gzip,
	}, rows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.key, err)
	}
	return out.Bytes(), nil
}

// allRecords returns every record of every file.
func (s *sample) allRecords() []record {
	var recs []record
	for _, f := range s.files {
		recs = append(recs, f.records...)
	}
	return recs
}

func (s *sample) countRecords() int {
	n := 0
	for _, r := range s.allRecords() {
		if r.Status == "OK" {
			n++
		}
	}
	return n
}

func (s *sample) countInWindow() int {
	n := 0
	for _, r := range s.allRecords() {
		if r.Status == "OK" && r.End >= windowStart.Unix() && r.Start < windowStop.Unix() {
			n++
		}
	}
	return n
}

// write replaces dir/AWSLogs with the sample's files and writes the expected
// digest and the README next to it.
func (s *sample) write(dir string) error {
	if err := os.RemoveAll(filepath.Join(dir, "AWSLogs")); err != nil {
		return fmt.Errorf("remove old sample: %w", err)
	}
	for _, f := range s.files {
		b, err := f.content()
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.FromSlash(f.key))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return fmt.Errorf("write sample: %w", err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return fmt.Errorf("write sample: %w", err)
		}
	}
	digest := expectedDigest(s.allRecords(), windowStart, windowStop)
	if err := os.WriteFile(filepath.Join(dir, digestFile), []byte(strings.Join(digest, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write expected digest: %w", err)
	}
	readme, err := s.readme(len(digest))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, readmeFile), readme, 0o644); err != nil {
		return fmt.Errorf("write README: %w", err)
	}
	return nil
}

var readmeTemplate = template.Must(template.New("readme").Parse(`# Sample VPC Flow Logs

Generated by ` + "`go run ./tools/gensample`" + ` (do not edit by hand; run it again and
commit the result). The files are laid out the way AWS delivers VPC Flow Logs
to S3, so ` + "`FLOW_LOGS_DIR=testdata/flowlogs`" + ` points the built-in digester at them.

## The window to ask for

    start=2026-11-01T10:00:00Z
    stop=2026-11-01T11:00:00Z

For example, with the service running on :8080:

    curl -i -X POST 'http://localhost:8080/?start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z'
    curl -i 'http://localhost:8080/?start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z'

## What is in it

{{.Files}} files holding {{.Records}} flow records, {{.InWindow}} of which overlap the window
(a record overlaps when its end is at or after the start and its start is
before the stop). They compact to the {{.Lines}} lines of ` + "`" + digestFile + "`" + `.

| Account | Region | Flow log | Layout | Files |
|---|---|---|---|---|
| 111122223333 | us-east-1 | fl-0a1b2c3d4e5f60718 | ` + "`AWSLogs/{account}/vpcflowlogs/{region}/{yyyy}/{mm}/{dd}/`" + ` | gzip, default format: web, app and database interfaces; a NODATA interface; records on the window's edges; a file delivered late (named 11:25, records of 10:4x); a file of the day before |
| 444455556666 | us-west-2 | fl-0f1e2d3c4b5a69788 | Hive: ` + "`AWSLogs/aws-account-id={account}/aws-service=vpcflowlogs/aws-region={region}/year=/month=/day=/hour=/`" + ` | gzip, default format: a bastion with rejected SSH and ICMP, an IPv6 interface, NTP (port 123 to 123), SKIPDATA; a file hours later |
| 777788889999 | eu-west-1 | fl-0c3d4e5f6a7b8c9d0 | ` + "`AWSLogs/{account}/vpcflowlogs/{region}/{yyyy}/{mm}/{dd}/{HH}/`" + ` | plain ` + "`.log`" + `, default format, one file without its header line; files just beyond the hour of slack |
| 777788889999 | eu-west-1 | fl-0e5f6a7b8c9d0e1f2 | same | gzip, custom version 5 format with vpc-id, pkt-srcaddr, flow-direction... in its own order; pkt-srcaddr differs from srcaddr behind a load balancer |
| 222233334444 | ap-southeast-2 | fl-0d4e5f6a7b8c9d0e1 | Hive, daily: ` + "`.../year=/month=/day=/`" + ` | Parquet (` + "`.log.parquet`" + `, GZIP pages, INT32 ports and INT64 counters, nulls for "-"), version 5 columns; a NODATA interval; traffic to the production account's app server |

The addresses are private (10.0.0.0/8) or from the documentation ranges
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); the accounts
and ids are made up.

## The expected digest

` + "`" + digestFile + "`" + ` is the digest of the window, computed by the generator from its
own list of records (not by parsing these files, and not with package
flowlog): records overlapping the window, the higher port of each (the source
port when both are equal) set to 0, records with the same account, interface,
addresses, ports, protocol and action merged, packets and bytes summed, the
earliest start and latest end kept, sorted by start. The built-in digester's
tests compare its output for the window to this file.
`))

func (s *sample) readme(lines int) ([]byte, error) {
	var b bytes.Buffer
	err := readmeTemplate.Execute(&b, map[string]int{
		"Files": len(s.files), "Records": s.countRecords(), "InWindow": s.countInWindow(), "Lines": lines,
	})
	if err != nil {
		return nil, fmt.Errorf("README: %w", err)
	}
	return b.Bytes(), nil
}
