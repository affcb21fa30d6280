package netlinksrc

import "testing"

// TestBatchPool: a batch given back is lent again, and the pool keeps at
// most maxSpareBytes, dropping the batches given back least recently,
// so that batches of a size nobody asks for any more do not crowd out
// the others.
func TestBatchPool(t *testing.T) {
	p := &batchPool{spare: make([]*batch, 0, 4)}
	b := p.get(initialSlotSize)
	p.put(b)
	if p.get(initialSlotSize) != b {
		t.Fatal("a batch given back is not lent again")
	}
	for range 3 {
		p.put(newBatch(maxSlotSize))
	}
	if p.bytes > maxSpareBytes {
		t.Fatalf("pool keeps %d bytes, more than %d", p.bytes, maxSpareBytes)
	}
	p.put(b)
	if p.bytes > maxSpareBytes {
		t.Fatalf("pool keeps %d bytes, more than %d", p.bytes, maxSpareBytes)
	}
	if p.get(initialSlotSize) != b {
		t.Fatal("the batch given back last was dropped")
	}
	if n := p.bytes; n != len(p.spare)*len(newBatch(maxSlotSize).buf) {
		t.Fatalf("pool accounts %d bytes for %d batches", n, len(p.spare))
	}
}
