// Command micro holds the Go twins of strand's C micro-benchmarks (bench/*.c).
//
// Usage: micro <benchmark> [N]. Each benchmark prints exactly one line
// "RESULT <name> <value> <unit>" with the same name and unit as its C twin, so
// bench/run.sh can compare them; other output goes to stderr. Only the standard
// library is used, so the build needs no network.
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

type bench struct {
	run  func(n int)
	defN int
}

var benches = map[string]bench{
	"yield":          {benchYield, 2000000},
	"yield_busy2":    {benchYieldBusy2, 1000000},
	"spawn":          {benchSpawn, 1000000},
	"spawn_row":      {benchSpawnRow, 1000000},
	"first_park":     {benchFirstPark, 100000},
	"idle_mem":       {benchIdleMem, 1000000},
	"skynet":         {benchSkynet, 1000000},
	"skynet_1w":      {benchSkynet1w, 1000000},
	"spawn_outside":  {benchSpawnOutside, 1000000},
	"pingpong":       {benchPingpong, 500000},
	"ring":           {benchRing, 100},
	"chan_1p1c":      {benchChan1p1c, 4000000},
	"chan_2x2":       {benchChan2x2, 4000000},
	"mailbox_rtt":    {benchMailboxRtt, 500000},
	"timer_churn":    {benchTimerChurn, 1000000},
	"cancel_latency": {benchCancelLatency, 100000},
	"monitor_rtt":    {benchMonitorRtt, 500000},
	"select2":        {benchSelect2, 4000000},
	"select_fanin8":  {benchSelectFanin8, 2000000},
	"handoff":        {benchHandoff, 21},
}

// result prints the line run.sh parses; %.3f matches the C side's format.
func result(name string, value float64, unit string) {
	fmt.Printf("RESULT %s %.3f %s\n", name, value, unit)
}

func nsPer(d time.Duration, n int) float64 {
	return float64(d.Nanoseconds()) / float64(n)
}

func usage() {
	names := make([]string, 0, len(benches))
	for k := range benches {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: micro <benchmark> [N]\nbenchmarks: %v\n", names)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	b, ok := benches[os.Args[1]]
	if !ok {
		usage()
	}
	n := b.defN
	if len(os.Args) > 2 {
		v, err := strconv.Atoi(os.Args[2])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "bad N %q\n", os.Args[2])
			os.Exit(2)
		}
		n = v
	}
	b.run(n)
}
