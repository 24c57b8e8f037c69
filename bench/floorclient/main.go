// Command floorclient is the Kafka floors' load generator (bench/scenarios/kafka_floor.py):
// the producer and the consumer of the floors' round trips, native, so that at thousands of
// records a second the floor measures the broker (and the relay), not the client.
//
// It sends numbered records to one topic, paced open-loop (record i is due at
// start + i/rate), and reads them back from another (the same topic for one hop; the relay's
// output for two), timing each from its intended send time to its arrival, as the Python
// floors and Parley's own latency runs do. The producer is idempotent, acks=all, linger 0,
// uncompressed: what Parley's producers are.
//
// The bench starts it with the topics in its flags. It prints `ready` once it can produce
// and its consumer has fetched; then each line `run <rate> <seconds> <drain seconds>
// <first seq>` on its stdin is answered with one JSON line (Result); it exits when its stdin
// closes.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Result is one run's answer: what the bench's FloorRun is made of.
type Result struct {
	Sent        int     `json:"sent"`
	Failed      int     `json:"failed"`
	Missing     int     `json:"missing"`
	SendWindowS float64 `json:"send_window_s"`
	// From each record's intended send time to its arrival, in microseconds.
	LatencyUs []int64 `json:"latency_us"`
	// How late each record left its schedule (the pacer's own error), in microseconds.
	SendLagUs []int64 `json:"send_lag_us"`
}

// awaited holds the intended send time of every record of the run sent and not yet arrived
// (or failed).
type awaited struct {
	mu      sync.Mutex
	due     map[uint64]time.Time
	arrived []int64
	sent    int // the run's records
	failed  int // of them, those the producer gave up on
	done    chan struct{}
}

func (a *awaited) expect(seq uint64, at time.Time) {
	a.mu.Lock()
	a.due[seq] = at
	a.mu.Unlock()
}

func (a *awaited) arrive(seq uint64, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.due[seq]
	if !ok {
		return // a warm-up's, or a duplicate
	}
	delete(a.due, seq)
	a.arrived = append(a.arrived, now.Sub(at).Microseconds())
	a.signal()
}

func (a *awaited) fail(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.due, seq)
	a.failed++
	a.signal()
}

// signal closes `done` once every record of the run arrived or failed (called with mu held).
func (a *awaited) signal() {
	if a.done != nil && len(a.arrived)+a.failed >= a.sent {
		close(a.done)
		a.done = nil
	}
}

type floor struct {
	producer *kgo.Client
	consumer *kgo.Client
	topic    string
	parts    int32
	padding  []byte
	awaited  awaited
}

func main() {
	bootstrap := flag.String("bootstrap", "", "the brokers, host:port[,host:port]")
	produce := flag.String("produce", "", "the topic records are sent to")
	consume := flag.String("consume", "", "the topic they are read back from")
	partitions := flag.Int("partitions", 1, "partitions of both topics")
	fetchWaitMs := flag.Int("fetch-max-wait-ms", 500, "the consumer's fetch wait")
	padding := flag.Int("padding", 280, "bytes after each record's 8-byte number")
	flag.Parse()
	if *bootstrap == "" || *produce == "" || *consume == "" || *partitions < 1 {
		fmt.Fprintln(os.Stderr, "floorclient: -bootstrap, -produce, -consume and -partitions are required")
		os.Exit(2)
	}
	f, err := open(strings.Split(*bootstrap, ","), *produce, *consume, int32(*partitions), *fetchWaitMs, *padding)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorclient:", err)
		os.Exit(1)
	}
	defer f.producer.Close()
	defer f.consumer.Close()
	go f.read()
	fmt.Println("ready")
	out := json.NewEncoder(os.Stdout)
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		var rate, seconds, drain float64
		var base uint64
		if _, err := fmt.Sscanf(lines.Text(), "run %g %g %g %d", &rate, &seconds, &drain, &base); err != nil || rate <= 0 {
			fmt.Fprintln(os.Stderr, "floorclient: expected `run <rate> <seconds> <drain seconds> <first seq>`, got", lines.Text())
			os.Exit(2)
		}
		if err := out.Encode(f.run(rate, seconds, drain, base)); err != nil {
			os.Exit(1)
		}
	}
}

func open(seeds []string, produce, consume string, parts int32, fetchWaitMs, padding int) (*floor, error) {
	producer, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("parley-bench-floor-native"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return nil, err
	}
	offsets := make(map[int32]kgo.Offset, parts)
	for p := int32(0); p < parts; p++ {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("parley-bench-floor-native"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{consume: offsets}),
		kgo.FetchMaxWait(time.Duration(fetchWaitMs)*time.Millisecond),
	)
	if err != nil {
		producer.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := producer.Ping(ctx); err != nil {
		producer.Close()
		consumer.Close()
		return nil, err
	}
	return &floor{
		producer: producer,
		consumer: consumer,
		topic:    produce,
		parts:    parts,
		padding:  make([]byte, padding),
		awaited:  awaited{due: map[uint64]time.Time{}},
	}, nil
}

func (f *floor) read() {
	for {
		fetches := f.consumer.PollFetches(context.Background())
		if fetches.IsClientClosed() {
			return
		}
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) {
			if len(r.Value) >= 8 {
				f.awaited.arrive(binary.BigEndian.Uint64(r.Value), now)
			}
		})
	}
}

// run sends `rate` records a second for `seconds`, then waits up to `drain` seconds for the
// last of them to arrive.
func (f *floor) run(rate, seconds, drain float64, base uint64) Result {
	count := max(int(rate*seconds), 1)
	period := time.Duration(float64(time.Second) / rate)
	done := make(chan struct{})
	f.awaited.mu.Lock()
	f.awaited.arrived, f.awaited.sent, f.awaited.failed = make([]int64, 0, count), count, 0
	f.awaited.done = done
	f.awaited.mu.Unlock()
	lags := make([]int64, 0, count)
	var acked sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	for i := 0; i < count; i++ {
		intended := start.Add(time.Duration(i) * period)
		if wait := time.Until(intended); wait > 0 {
			time.Sleep(wait)
		}
		lags = append(lags, max(time.Since(intended), 0).Microseconds())
		seq := base + uint64(i)
		value := make([]byte, 8+len(f.padding))
		binary.BigEndian.PutUint64(value, seq)
		copy(value[8:], f.padding)
		f.awaited.expect(seq, intended)
		acked.Add(1)
		f.producer.Produce(context.Background(), &kgo.Record{
			Topic: f.topic, Partition: int32(seq % uint64(f.parts)), Value: value,
		}, func(_ *kgo.Record, err error) {
			defer acked.Done()
			if err != nil {
				f.awaited.fail(seq)
			}
		})
	}
	acked.Wait() // every record acknowledged (or failed)
	window := time.Since(start)
	select {
	case <-done:
	case <-time.After(time.Duration(drain * float64(time.Second))):
	}
	f.awaited.mu.Lock()
	defer f.awaited.mu.Unlock()
	arrived := f.awaited.arrived
	missing := len(f.awaited.due)
	f.awaited.due = map[uint64]time.Time{} // what did not arrive in time is not awaited any more
	f.awaited.done = nil
	return Result{
		Sent:        count,
		Failed:      f.awaited.failed,
		Missing:     missing,
		SendWindowS: window.Seconds(),
		LatencyUs:   arrived,
		SendLagUs:   lags,
	}
}
