package replicator

import (
	"runtime/metrics"
	"sync"
)

// heapWatch records the largest Go heap seen at the points where a call
// holds the most: after each snapshot chunk and each batch is handed to the
// destination. It is what BatchBytes bounds; the destination's own memory
// (DuckDB's buffer pool) is not part of it. Reading the metric does not stop
// the world.
type heapWatch struct {
	mu     sync.Mutex
	sample []metrics.Sample
	peak   uint64
}

func newHeapWatch() *heapWatch {
	return &heapWatch{sample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (h *heapWatch) observe() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	metrics.Read(h.sample)
	if h.sample[0].Value.Kind() == metrics.KindUint64 {
		h.peak = max(h.peak, h.sample[0].Value.Uint64())
	}
}

func (h *heapWatch) max() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}
