package digester

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	// DefaultConcurrency is how many files Builtin reads at once unless told
	// otherwise: enough to hide S3 latency, few enough to leave cores for the
	// rest of the service.
	DefaultConcurrency = 4
	// DefaultSlack is how far outside the window a file's name timestamp may
	// be and still be read, unless told otherwise. See Builtin.Slack.
	DefaultSlack = time.Hour

	// awsLogs is the folder AWS writes every log under, below the prefix.
	awsLogs = "AWSLogs"
	// checkEvery is how many records a reader handles between two looks at
	// its context, so a failed or cancelled digest stops quickly.
	checkEvery = 4096
	// addBatch is how many records a reader hands to the compactor at once.
	addBatch = 512
)

// Source is where Builtin finds flow log files: a folder (Dir) or a bucket
// (Bucket). Keys are slash-separated; folders are prefixes ending in "/".
type Source interface {
	// List returns the keys of the files directly inside the folder prefix
	// ("" for the top, else ending in "/") and the sub-folders as prefixes
	// ending in "/", in any order. A missing folder is empty, not an error.
	List(ctx context.Context, prefix string) ([]string, error)
	// Open returns a reader over the file key; the caller closes it. It
	// returns an error wrapping types.ErrNotFound when there is no such file.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// ErrNoFlowLogs is returned (wrapped) by Builtin.Digest when no flow log file
// can hold records of the window: the source, prefix, accounts or window are
// wrong, or the files have not been delivered yet. It is not permanent: a
// later attempt may find them.
var ErrNoFlowLogs = errors.New("no flow log files for the window")

// Builtin is a types.Digester that makes digests itself from VPC Flow Log
// files laid out the way AWS delivers them to S3, so that no vpcflow-digesterd
// is needed. It reads both key layouts AWS writes:
//
//	{prefix}AWSLogs/{account}/vpcflowlogs/{region}/{yyyy}/{mm}/{dd}/[{HH}/]{file}
//	{prefix}AWSLogs/aws-account-id={account}/aws-service=vpcflowlogs/aws-region={region}/year={yyyy}/month={mm}/day={dd}/[hour={HH}/]{file}
//
// where {file} is {account}_vpcflowlogs_{region}_{flowlogid}_{yyyymmddTHHmmZ}_{hash}.log[.gz],
// in the default or any custom format (versions 2 to 8, with its header line).
// Only the day and hour folders the window (widened by Slack) touches are
// listed, and only files whose name timestamp falls in it are read. Records
// are kept when they overlap the window and compacted the way
// vpcflow-digesterd does (see flowlog.PartitionedCompactor), within a
// memory budget beyond which the flows spill to disk.
type Builtin struct {
	// Source holds the files (FLOW_LOGS_DIR or VPC_FLOW_LOGS_BUCKET). Without
	// one, Digest returns an error wrapping types.ErrNoSource.
	Source Source
	// Prefix is the folder AWS was told to deliver to, the part of the keys
	// before "AWSLogs/" (VPC_FLOW_LOGS_PREFIX); empty for none. A prefix that
	// already ends in "AWSLogs" is used as is.
	Prefix string
	// Accounts are the account ids to read (VPC_FLOW_LOGS_SCAN_ACCOUNTS);
	// empty means every account found under AWSLogs/.
	Accounts []string
	// Regions are the regions to read (VPC_FLOW_LOGS_SCAN_REGIONS); empty
	// means every region found for each account.
	Regions []string
	// Concurrency bounds the files (and folders) read at once; not positive
	// means DefaultConcurrency.
	Concurrency int
	// Slack is how far before the window's start and after its stop a file's
	// name timestamp may be and still be read; not positive means
	// DefaultSlack. It is needed because a file's name says when AWS wrote it,
	// not when its flows happened: records are aggregated over intervals of up
	// to ten minutes, then published with a delay of several minutes (more
	// when delivery is backlogged), so a flow of 10:55 can sit in a file named
	// after 11:10. Files inside the slack are read and their records
	// filtered; a larger slack costs only listing and reading more files.
	Slack time.Duration
	// MaxLineBytes bounds a line's length (see flowlog.WithMaxLineBytes);
	// not positive means flowlog's default. Longer lines are skipped and
	// counted.
	MaxLineBytes int
	// MaxFlows bounds the distinct flows of a window (GRAPHERD_MAX_FLOWS),
	// and so the disk the compaction spills to and the size of the graph;
	// not positive means no bound. A window with more fails permanently,
	// naming the bound.
	MaxFlows int
	// MemoryBytes is the memory the window's flows take while they are
	// compacted (GRAPHERD_DIGEST_MEMORY_BYTES); beyond it they spill to
	// temporary files in SpillDir. Not positive means
	// flowlog.DefaultMemoryBytes. See flowlog.PartitionedCompactor.
	MemoryBytes int64
	// SpillDir is the folder of the spill files (GRAPHERD_SPILL_DIR);
	// empty means the system's temporary folder.
	SpillDir string
	// Logger receives a summary of each digest and warnings about files or
	// lines left out; nil discards them.
	Logger *slog.Logger
}

var _ types.Digester = (*Builtin)(nil)

// Digest reads every flow log file that may hold records overlapping
// [start, stop) (a record overlaps when End >= start and Start < stop, in
// unix seconds) and returns the compacted digest as a stream of version 2
// lines, sorted by start. It fails as a whole, naming the key, when any file
// cannot be listed, opened, decompressed or read: a graph is never made from
// part of the data. A corrupt compressed file is a permanent error
// (types.IsPermanent). It returns an error wrapping ErrNoFlowLogs when no file
// can hold records of the window, and one wrapping types.ErrNoSource when
// Source is nil. A window whose flows spilled to disk keeps its spill files
// open until the digest is read to the end or closed: the caller closes it.
func (b *Builtin) Digest(ctx context.Context, start, stop time.Time) (io.ReadCloser, error) {
	if b.Source == nil {
		return nil, fmt.Errorf("digester: no flow logs to read: set FLOW_LOGS_DIR (a folder) or "+
			"VPC_FLOW_LOGS_BUCKET to digest flow logs here, or DIGESTER_ENDPOINT to use vpcflow-digesterd: %w",
			types.ErrNoSource)
	}
	if stop.Before(start) {
		return nil, fmt.Errorf("digester: window stops (%s) before it starts (%s): %w",
			stop.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339), types.ErrInvalidInput)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	w := newWindow(start, stop, b.slack())

	files, ignored, err := b.findFiles(ctx, w)
	if err != nil {
		return nil, err
	}
	log := b.logger().With("start", w.start.Format(time.RFC3339), "stop", w.stop.Format(time.RFC3339))
	if len(ignored) > 0 {
		log.Warn("flow log files with unsupported names or formats left out",
			"count", len(ignored), "example", ignored[0])
	}
	if len(files) == 0 {
		msg := fmt.Sprintf("under %q between %s and %s", b.root(),
			w.lo.Format(time.RFC3339), w.hi.Format(time.RFC3339))
		if len(ignored) > 0 {
			msg += fmt.Sprintf(" (%d files left out for their names or formats, e.g. %q)", len(ignored), ignored[0])
		}
		return nil, fmt.Errorf("digester: %w %s", ErrNoFlowLogs, msg)
	}

	comp := flowlog.NewPartitionedCompactor(flowlog.PartitionOptions{
		MaxFlows: b.MaxFlows, MemoryBytes: b.MemoryBytes, Dir: b.SpillDir,
	})
	st, err := b.readFiles(ctx, w, files, comp, log)
	flows := 0
	if err == nil {
		if st.records == 0 && st.malformedFiles > 0 {
			_ = comp.Close()
			return nil, types.Permanent(fmt.Errorf("digester: no usable record: %d of %d flow log files malformed: %w",
				st.malformedFiles, len(files), flowlog.ErrMalformedParquet))
		}
		flows, err = comp.Compact(ctx)
	}
	if err != nil {
		known := max(flows, comp.Len())
		_ = comp.Close()
		if errors.Is(err, flowlog.ErrTooManyFlows) {
			return nil, types.Permanent(fmt.Errorf("digester: the window holds more than %d distinct flows, the bound "+
				"GRAPHERD_MAX_FLOWS sets (%d flows known after %d records of %d files): ask for a shorter window or raise the bound: %w",
				b.MaxFlows, known, st.records, len(files), err))
		}
		return nil, err
	}
	spilled := comp.Stats()
	log.Info("flow logs digested", "files", len(files), "lines", st.lines, "records", st.records,
		"kept", st.kept, "skipped_lines", st.skipped, "skipped_files", st.malformedFiles, "flows", flows,
		"spills", spilled.Spills, "spill_peak_bytes", spilled.PeakDiskBytes,
		"duration", time.Since(began).Round(time.Millisecond))

	return comp.Digest(), nil
}

// Validate checks the settings that can be wrong before any file is read, so
// that start-up can refuse them: every account and region must be one folder
// name. It returns an error wrapping types.ErrInvalidInput that names the
// setting's variable.
func (b *Builtin) Validate() error {
	for _, set := range []struct {
		env    string
		values []string
	}{{"VPC_FLOW_LOGS_SCAN_ACCOUNTS", b.Accounts}, {"VPC_FLOW_LOGS_SCAN_REGIONS", b.Regions}} {
		for _, v := range set.values {
			if !validSegment(v) {
				return fmt.Errorf("digester: %s: %q is not a folder name: %w", set.env, v, types.ErrInvalidInput)
			}
		}
	}
	return nil
}

func (b *Builtin) slack() time.Duration {
	if b.Slack > 0 {
		return b.Slack
	}
	return DefaultSlack
}

func (b *Builtin) concurrency() int {
	if b.Concurrency > 0 {
		return b.Concurrency
	}
	return DefaultConcurrency
}

func (b *Builtin) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// root is the AWSLogs folder: Prefix as a folder, then AWSLogs/.
func (b *Builtin) root() string {
	p := strings.Trim(b.Prefix, "/")
	switch {
	case p == "":
		return awsLogs + "/"
	case path.Base(p) == awsLogs:
		return p + "/"
	default:
		return p + "/" + awsLogs + "/"
	}
}

// validSegment reports whether s can be one folder name of a key.
func validSegment(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\")
}

// window is the requested window and the wider span file names may fall in.
type window struct {
	start, stop       time.Time // the window, UTC
	startSec, stopSec int64     // in whole seconds, for comparing with records
	lo, hi            time.Time // the span of file name timestamps to read
}

func newWindow(start, stop time.Time, slack time.Duration) window {
	start, stop = start.UTC(), stop.UTC()
	return window{
		start: start, stop: stop,
		// Records carry whole seconds: End >= start and Start < stop hold for
		// an integer exactly when they hold against the ceiling of each bound.
		startSec: ceilUnix(start), stopSec: ceilUnix(stop),
		// File names carry whole minutes, truncated.
		lo: start.Add(-slack).Truncate(time.Minute),
		hi: stop.Add(slack),
	}
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// overlaps reports whether the span [from, to) of a folder can hold files
// named within [lo, hi].
func (w window) overlaps(from, to time.Time) bool {
	return !from.After(w.hi) && to.After(w.lo)
}

// layout is one of the two ways AWS names the folders of a flow log.
type layout struct {
	// accountDir and regionDir name the account and region folders.
	accountDir func(account string) string
	regionDir  func(region string) string
	// account and region read the account or region out of a folder name,
	// false when the folder is not one.
	account, region func(dir string) (string, bool)
	// service is the folder between account and region.
	service string
	// day is the day folder (with a trailing "/") of a UTC day.
	day func(t time.Time) string
	// hour reads the hour out of an hour folder name.
	hour func(dir string) (int, bool)
}

var (
	plainLayout = layout{
		accountDir: func(a string) string { return a },
		regionDir:  func(r string) string { return r },
		account:    func(d string) (string, bool) { return d, !strings.Contains(d, "=") },
		region:     func(d string) (string, bool) { return d, !strings.Contains(d, "=") },
		service:    "vpcflowlogs",
		day:        func(t time.Time) string { return t.Format("2006/01/02/") },
		hour:       func(d string) (int, bool) { return parseHour(d) },
	}
	hiveLayout = layout{
		accountDir: func(a string) string { return "aws-account-id=" + a },
		regionDir:  func(r string) string { return "aws-region=" + r },
		account:    func(d string) (string, bool) { return strings.CutPrefix(d, "aws-account-id=") },
		region:     func(d string) (string, bool) { return strings.CutPrefix(d, "aws-region=") },
		service:    "aws-service=vpcflowlogs",
		day:        func(t time.Time) string { return t.Format("year=2006/month=01/day=02/") },
		hour: func(d string) (int, bool) {
			h, ok := strings.CutPrefix(d, "hour=")
			if !ok {
				return 0, false
			}
			return parseHour(h)
		},
	}
	layouts = []layout{plainLayout, hiveLayout}
)

func parseHour(s string) (int, bool) {
	if len(s) != 2 {
		return 0, false
	}
	h, err := strconv.Atoi(s)
	return h, err == nil && h >= 0 && h < 24
}

// fileNameRE matches the name AWS gives a flow log file:
// {account}_vpcflowlogs_{region}_{flowlogid}_{yyyymmddTHHmmZ}_{hash}.log[.gz].
var fileNameRE = regexp.MustCompile(`^[^_/]+_vpcflowlogs_[^_/]+_[^_/]+_(\d{8}T\d{4}Z)_[^_./]+\.log(\.gz|\.parquet)?$`)

// fileTime returns the timestamp in a flow log file's name, and false when
// the name is not one Builtin can read.
func fileTime(name string) (time.Time, bool) {
	m := fileNameRE.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T1504Z", m[1])
	return t, err == nil
}

// regionRoot is the folder of one account's flow logs in one region.
type regionRoot struct {
	layout layout
	dir    string // ends in "/"
}

// findFiles lists the folders the window touches and returns the keys of the
// files to read, sorted, and the names of files left out because Builtin
// cannot read them.
func (b *Builtin) findFiles(ctx context.Context, w window) (files, ignored []string, err error) {
	roots, err := b.regionRoots(ctx)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.concurrency())
	for _, r := range roots {
		for day := w.lo.Truncate(24 * time.Hour); !day.After(w.hi); day = day.Add(24 * time.Hour) {
			g.Go(func() error {
				f, ign, err := b.listDay(gctx, w, r, day)
				mu.Lock()
				files = append(files, f...)
				ignored = append(ignored, ign...)
				mu.Unlock()
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	slices.Sort(files)
	slices.Sort(ignored)
	return files, ignored, nil
}

// regionRoots finds the account and region folders to read, in both layouts,
// listing the AWSLogs folder for accounts and each account for regions when
// they are not configured.
func (b *Builtin) regionRoots(ctx context.Context) ([]regionRoot, error) {
	root := b.root()
	type accountDir struct {
		layout layout
		dir    string
	}
	var accounts []accountDir
	if len(b.Accounts) > 0 {
		for _, l := range layouts {
			for _, a := range b.Accounts {
				accounts = append(accounts, accountDir{l, root + l.accountDir(a) + "/" + l.service + "/"})
			}
		}
	} else {
		subs, err := b.listFolders(ctx, root)
		if err != nil {
			return nil, err
		}
		for _, d := range subs {
			for _, l := range layouts {
				if a, ok := l.account(d); ok && validSegment(a) {
					accounts = append(accounts, accountDir{l, root + d + "/" + l.service + "/"})
				}
			}
		}
	}
	var roots []regionRoot
	for _, a := range accounts {
		if len(b.Regions) > 0 {
			for _, r := range b.Regions {
				roots = append(roots, regionRoot{a.layout, a.dir + a.layout.regionDir(r) + "/"})
			}
			continue
		}
		subs, err := b.listFolders(ctx, a.dir)
		if err != nil {
			return nil, err
		}
		for _, d := range subs {
			if r, ok := a.layout.region(d); ok && validSegment(r) {
				roots = append(roots, regionRoot{a.layout, a.dir + d + "/"})
			}
		}
	}
	return roots, nil
}

// listFolders returns the names of the sub-folders of prefix.
func (b *Builtin) listFolders(ctx context.Context, prefix string) ([]string, error) {
	keys, err := b.Source.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("digester: list %s: %w", prefix, err)
	}
	var dirs []string
	for _, k := range keys {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), "/"); ok && name != "" {
			dirs = append(dirs, name)
		}
	}
	return dirs, nil
}

// listDay returns the files of one day folder, and of those of its hour
// folders the window touches, whose names fall in the window.
func (b *Builtin) listDay(ctx context.Context, w window, r regionRoot, day time.Time) (files, ignored []string, err error) {
	dayDir := r.dir + r.layout.day(day)
	keys, err := b.Source.List(ctx, dayDir)
	if err != nil {
		return nil, nil, fmt.Errorf("digester: list %s: %w", dayDir, err)
	}
	var hours []string
	for _, k := range keys {
		name := strings.TrimPrefix(k, dayDir)
		if dir, ok := strings.CutSuffix(name, "/"); ok {
			if h, ok := r.layout.hour(dir); ok {
				from := day.Add(time.Duration(h) * time.Hour)
				if w.overlaps(from, from.Add(time.Hour)) {
					hours = append(hours, k)
				}
				continue
			}
		}
		files, ignored = w.pick(k, files, ignored)
	}
	for _, hourDir := range hours {
		keys, err := b.Source.List(ctx, hourDir)
		if err != nil {
			return nil, nil, fmt.Errorf("digester: list %s: %w", hourDir, err)
		}
		for _, k := range keys {
			files, ignored = w.pick(k, files, ignored)
		}
	}
	return files, ignored, nil
}

// pick appends key to files when it names a flow log file of the window, to
// ignored when it is a file Builtin cannot read. A folder named like a flow
// log file is picked as a file, so that opening it fails the digest instead
// of leaving its data out unnoticed; other folders are passed over.
func (w window) pick(key string, files, ignored []string) ([]string, []string) {
	name, isDir := strings.CutSuffix(key, "/")
	t, ok := fileTime(path.Base(name))
	switch {
	case ok:
		if !t.Before(w.lo) && !t.After(w.hi) {
			files = append(files, name)
		}
	case !isDir:
		ignored = append(ignored, key)
	}
	return files, ignored
}

// readStats counts what reading the files did.
type readStats struct {
	lines, records, kept, skipped int64
	// malformedFiles counts the files left out whole (see
	// fileStats.malformed).
	malformedFiles int64
}

// readFiles reads the files concurrently into comp, keeping the records that
// overlap the window. The first failure cancels the others and is returned.
func (b *Builtin) readFiles(ctx context.Context, w window, files []string, comp *flowlog.PartitionedCompactor, log *slog.Logger) (readStats, error) {
	var lines, records, kept, skipped, malformed atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.concurrency())
	for _, key := range files {
		g.Go(func() (err error) {
			// Nothing above this goroutine could recover a panic in it
			// (a reader's bug, met by a file of the bucket's), and a bug
			// must fail the job, not the process.
			defer func() {
				if p := recover(); p != nil {
					log.Error("flow log reader panicked", "key", key, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					err = fmt.Errorf("digester: read flow log %s: panicked: %v", key, p)
				}
			}()
			st, err := b.readFile(gctx, w, key, comp)
			lines.Add(st.Lines)
			records.Add(st.Used)
			kept.Add(st.kept)
			skipped.Add(st.Skipped)
			if st.Skipped > 0 {
				log.Warn("malformed flow log lines skipped", "key", key,
					"skipped", st.Skipped, "first_lines", st.FirstSkipped)
			}
			if st.malformed != nil {
				malformed.Add(1)
				log.Warn("malformed flow log file skipped", "key", key, "reason", st.malformed.Error())
			}
			return err
		})
	}
	err := g.Wait()
	return readStats{lines.Load(), records.Load(), kept.Load(), skipped.Load(), malformed.Load()}, err
}

// fileStats is what reading one file did.
type fileStats struct {
	flowlog.Stats
	kept int64
	// malformed says why the file was left out whole: a Parquet file
	// whose footer cannot be read. Such a file is skipped, like a
	// malformed line, rather than failing the window.
	malformed error
}

func (b *Builtin) readFile(ctx context.Context, w window, key string, comp *flowlog.PartitionedCompactor) (fileStats, error) {
	var st fileStats
	rc, err := b.Source.Open(ctx, key)
	if err != nil {
		return st, fmt.Errorf("digester: open flow log %s: %w", key, err)
	}
	defer rc.Close()
	var opts []flowlog.Option
	if b.MaxLineBytes > 0 {
		opts = append(opts, flowlog.WithMaxLineBytes(b.MaxLineBytes))
	}
	opts = append(opts, flowlog.WithContext(ctx))
	r, err := flowlog.NewReader(rc, opts...)
	if ras, ok := b.Source.(RandomAccessSource); ok && errors.Is(err, flowlog.ErrNeedsRandomAccess) {
		_ = rc.Close() // the stream is not needed: the file is read by ranges
		r, err = openParquet(ctx, ras, key, opts)
	}
	if errors.Is(err, flowlog.ErrMalformedParquet) {
		st.malformed = err
		return st, nil
	}
	if err != nil {
		return st, readError(key, err)
	}
	// Records are handed to comp in batches, so that the files read at once
	// do not wait on comp's lock for each record.
	batch := make([]flowlog.Record, 0, addBatch)
	for n := 1; r.Next(); n++ {
		rec := r.Record()
		if rec.End >= w.startSec && rec.Start < w.stopSec {
			batch = append(batch, *rec)
			st.kept++
			if len(batch) == addBatch {
				if err := comp.AddAll(batch); err != nil {
					st.Stats = r.Stats()
					return st, err
				}
				batch = batch[:0]
			}
		}
		if n%checkEvery == 0 && ctx.Err() != nil {
			st.Stats = r.Stats()
			return st, fmt.Errorf("digester: read flow log %s: %w", key, context.Cause(ctx))
		}
	}
	st.Stats = r.Stats()
	if err := comp.AddAll(batch); err != nil {
		return st, err
	}
	if err := r.Err(); err != nil {
		return st, readError(key, err)
	}
	return st, nil
}

// openParquet reads the Parquet file key through ranged reads.
func openParquet(ctx context.Context, src RandomAccessSource, key string, opts []flowlog.Option) (*flowlog.Reader, error) {
	ra, size, err := src.OpenAt(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("digester: open flow log %s: %w", key, err)
	}
	return flowlog.NewParquetReader(ra, size, opts...)
}

// readError names the file that could not be read; a corrupt file is
// permanent, since reading it again gives the same bytes.
func readError(key string, err error) error {
	err = fmt.Errorf("digester: read flow log %s: %w", key, err)
	if errors.Is(err, flowlog.ErrCorrupt) {
		return types.Permanent(err)
	}
	return err
}
