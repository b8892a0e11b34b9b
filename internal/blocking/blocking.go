// Package blocking holds a writer that blocks, for tests that need an
// operation in flight: a piece hash written to it pins the piece until the
// test releases it.
package blocking

// Writer blocks its first Write until Release is closed, closing Started
// when that Write begins; later Writes return at once. It is used by one
// writing goroutine.
type Writer struct {
	Started chan struct{} // closed when the first Write begins
	Release chan struct{} // close it to let the first Write return
	begun   bool
}

// New returns a Writer whose first Write blocks.
func New() *Writer {
	return &Writer{Started: make(chan struct{}), Release: make(chan struct{})}
}

func (w *Writer) Write(b []byte) (int, error) {
	if !w.begun {
		w.begun = true
		close(w.Started)
		<-w.Release
	}
	return len(b), nil
}
