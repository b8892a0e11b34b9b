// Package demovideo writes the video memtorrent's demo seeds, in pure Go:
// an MP4 of H.264 video whose every macroblock is I_PCM, raw samples that
// need no encoder (ISO/IEC 14496-10 7.3.5), so every browser's and
// player's H.264 decoder shows a moving picture. The bitrate is high (about
// 18 Mbit/s), which loopback does not mind. Every frame is an IDR frame:
// any frame is a seek point.
package demovideo

import (
	"bufio"
	be "encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"os"
)

// Geometry of the demo video.
const (
	demoWidth  = 320
	demoHeight = 240
	demoFPS    = 20
	mbW, mbH   = demoWidth / 16, demoHeight / 16
)

// bitWriter writes an RBSP bit by bit, most significant first.
type bitWriter struct {
	buf  []byte
	cur  byte
	nbit uint8
}

func (w *bitWriter) bit(b uint32) {
	w.cur = w.cur<<1 | byte(b&1)
	w.nbit++
	if w.nbit == 8 {
		w.buf = append(w.buf, w.cur)
		w.cur, w.nbit = 0, 0
	}
}

func (w *bitWriter) bits(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bit(v >> uint(i))
	}
}

// ue writes v as unsigned Exp-Golomb.
func (w *bitWriter) ue(v uint32) {
	x := v + 1
	n := 0
	for t := x; t > 1; t >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(x, n+1)
}

// align writes zero bits up to a byte boundary.
func (w *bitWriter) align() {
	for w.nbit != 0 {
		w.bit(0)
	}
}

// trailing writes rbsp_trailing_bits.
func (w *bitWriter) trailing() {
	w.bit(1)
	w.align()
}

// nal returns the NAL unit of an RBSP with emulation prevention bytes.
func nal(refIdc, typ byte, rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/64+1)
	out = append(out, refIdc<<5|typ)
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// demoSPS returns the sequence parameter set: Baseline, 4:2:0, POC type 2.
func demoSPS() []byte {
	var w bitWriter
	w.bits(66, 8)   // profile_idc: Baseline
	w.bits(0xc0, 8) // constraint_set0 and 1
	w.bits(40, 8)   // level_idc 4.0
	w.ue(0)         // seq_parameter_set_id
	w.ue(0)         // log2_max_frame_num_minus4
	w.ue(2)         // pic_order_cnt_type
	w.ue(0)         // max_num_ref_frames
	w.bit(0)        // gaps_in_frame_num_value_allowed_flag
	w.ue(mbW - 1)   // pic_width_in_mbs_minus1
	w.ue(mbH - 1)   // pic_height_in_map_units_minus1
	w.bit(1)        // frame_mbs_only_flag
	w.bit(1)        // direct_8x8_inference_flag
	w.bit(0)        // frame_cropping_flag
	w.bit(0)        // vui_parameters_present_flag
	w.trailing()
	return nal(3, 7, w.buf)
}

// demoPPS returns the picture parameter set: CAVLC, deblocking control.
func demoPPS() []byte {
	var w bitWriter
	w.ue(0)      // pic_parameter_set_id
	w.ue(0)      // seq_parameter_set_id
	w.bit(0)     // entropy_coding_mode_flag: CAVLC
	w.bit(0)     // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)      // num_slice_groups_minus1
	w.ue(0)      // num_ref_idx_l0_default_active_minus1
	w.ue(0)      // num_ref_idx_l1_default_active_minus1
	w.bit(0)     // weighted_pred_flag
	w.bits(0, 2) // weighted_bipred_idc
	w.ue(1)      // pic_init_qp_minus26: se(0)
	w.ue(0)      // pic_init_qs_minus26: se(0)
	w.ue(0)      // chroma_qp_index_offset: se(0)
	w.bit(1)     // deblocking_filter_control_present_flag
	w.bit(0)     // constrained_intra_pred_flag
	w.bit(0)     // redundant_pic_cnt_present_flag
	w.trailing()
	return nal(3, 8, w.buf)
}

// demoFrame returns frame n as an IDR slice NAL unit of I_PCM macroblocks:
// colour bars scrolling sideways and a white square bouncing.
func demoFrame(n int) []byte {
	var w bitWriter
	w.buf = make([]byte, 0, mbW*mbH*390+16)
	w.ue(0)             // first_mb_in_slice
	w.ue(7)             // slice_type: I, all slices
	w.ue(0)             // pic_parameter_set_id
	w.bits(0, 4)        // frame_num
	w.ue(uint32(n % 2)) // idr_pic_id: differs between neighbours
	w.bit(0)            // no_output_of_prior_pics_flag
	w.bit(0)            // long_term_reference_flag
	w.ue(0)             // slice_qp_delta: se(0)
	w.ue(1)             // disable_deblocking_filter_idc: off
	// The bouncing square's corner.
	period := 2 * (demoWidth - 64)
	x := n * 6 % period
	if x > demoWidth-64 {
		x = period - x
	}
	periodY := 2 * (demoHeight - 64)
	y := n * 4 % periodY
	if y > demoHeight-64 {
		y = periodY - y
	}
	// Colour bars (Y, Cb, Cr) in video range.
	bars := [8][3]byte{{180, 128, 128}, {168, 44, 136}, {145, 147, 44}, {133, 63, 52}, {63, 193, 204}, {51, 109, 212}, {28, 212, 120}, {16, 128, 128}}
	bar := func(px int) [3]byte { return bars[((px+n*4)%demoWidth+demoWidth)%demoWidth*8/demoWidth] }
	inSquare := func(px, py int) bool { return px >= x && px < x+64 && py >= y && py < y+64 }
	for my := range mbH {
		for mx := range mbW {
			w.ue(25) // mb_type: I_PCM
			w.align()
			for j := range 16 {
				for i := range 16 {
					px, py := mx*16+i, my*16+j
					v := bar(px)[0]
					if inSquare(px, py) {
						v = 235
					}
					w.buf = append(w.buf, v)
				}
			}
			for c := 1; c <= 2; c++ {
				for j := range 8 {
					for i := range 8 {
						px, py := mx*16+i*2, my*16+j*2
						v := bar(px)[c]
						if inSquare(px, py) {
							v = 128
						}
						w.buf = append(w.buf, v)
					}
				}
			}
		}
	}
	w.trailing()
	return nal(3, 5, w.buf)
}

// FrameSize is the size of one frame's sample in the MP4.
func FrameSize() int { return 4 + len(demoFrame(0)) }

// WriteMP4 writes an MP4 of the demo video, about size bytes and at least
// one frame, to out.
func WriteMP4(out io.Writer, size int64) error {
	frames := max(1, int(size/int64(FrameSize())))
	samples := make([][]byte, frames)
	sizes := make([]uint32, frames)
	for i := range frames {
		samples[i] = demoFrame(i)
		sizes[i] = uint32(4 + len(samples[i]))
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	ftyp := box("ftyp", []byte("isom"), u32(512), []byte("isomiso2avc1mp41"))
	moovSize := len(demoMoov(frames, sizes, 0))
	mdatStart := len(ftyp) + moovSize + 8
	bw.Write(ftyp)
	bw.Write(demoMoov(frames, sizes, uint32(mdatStart)))
	var total int64
	for _, s := range sizes {
		total += int64(s)
	}
	bw.Write(u32(uint32(8 + total)))
	bw.WriteString("mdat")
	for _, s := range samples {
		bw.Write(u32(uint32(len(s))))
		bw.Write(s)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the demo video: %w", err)
	}
	return nil
}

// WriteFile writes the demo video of about size bytes (the same for every
// run) to a new file at path and returns its size.
func WriteFile(path string, size int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	err = WriteMP4(f, size)
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// PieceLength returns the piece length of a torrent of the demo's file of
// size bytes under capacity: about 1024 pieces, a power of two between 16 KiB and 1 MiB, and
// no more than a quarter of the capacity when that leaves 16 KiB.
func PieceLength(size, capacity int64) int64 {
	pl := int64(1) << bits.Len64(uint64(max(size/1024, 1)-1))
	pl = min(max(pl, 16<<10), 1<<20)
	for pl > 16<<10 && pl > capacity/4 {
		pl /= 2
	}
	return pl
}

// demoMoov returns the moov box of frames frames whose samples follow
// one another from offset mdat.
func demoMoov(frames int, sizes []uint32, mdat uint32) []byte {
	const timescale = 1000
	dur := uint32(frames * timescale / demoFPS)
	matrix := cat(u32(0x10000), u32(0), u32(0), u32(0), u32(0x10000), u32(0), u32(0), u32(0), u32(0x40000000))
	mvhd := fullBox("mvhd", 0, 0, u32(0), u32(0), u32(timescale), u32(dur), u32(0x10000), u16(0x100), make([]byte, 10),
		matrix, make([]byte, 24), u32(2))
	tkhd := fullBox("tkhd", 0, 3, u32(0), u32(0), u32(1), u32(0), u32(dur), make([]byte, 8), u16(0), u16(0), u16(0), u16(0),
		matrix, u32(demoWidth<<16), u32(demoHeight<<16))
	mdhd := fullBox("mdhd", 0, 0, u32(0), u32(0), u32(timescale), u32(dur), u16(0x55c4), u16(0))
	hdlr := fullBox("hdlr", 0, 0, u32(0), []byte("vide"), make([]byte, 12), []byte("memtorrent demo\x00"))
	vmhd := fullBox("vmhd", 0, 1, make([]byte, 8))
	dinf := box("dinf", fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 1)))
	sps, pps := demoSPS(), demoPPS()
	avcC := box("avcC", []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}, u16(uint16(len(sps))), sps,
		[]byte{1}, u16(uint16(len(pps))), pps)
	avc1 := box("avc1", make([]byte, 6), u16(1), make([]byte, 16), u16(demoWidth), u16(demoHeight),
		u32(0x480000), u32(0x480000), u32(0), u16(1), make([]byte, 32), u16(0x18), u16(0xffff), avcC)
	stsd := fullBox("stsd", 0, 0, u32(1), avc1)
	stts := fullBox("stts", 0, 0, u32(1), u32(uint32(frames)), u32(timescale/demoFPS))
	stsc := fullBox("stsc", 0, 0, u32(1), u32(1), u32(uint32(frames)), u32(1))
	stszEntries := make([]byte, 0, 4*frames)
	for _, s := range sizes {
		stszEntries = append(stszEntries, u32(s)...)
	}
	stsz := fullBox("stsz", 0, 0, u32(0), u32(uint32(frames)), stszEntries)
	stco := fullBox("stco", 0, 0, u32(1), u32(mdat))
	stbl := box("stbl", stsd, stts, stsc, stsz, stco)
	minf := box("minf", vmhd, dinf, stbl)
	mdia := box("mdia", mdhd, hdlr, minf)
	trak := box("trak", tkhd, mdia)
	return box("moov", mvhd, trak)
}

func u32(v uint32) []byte { return be.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return be.BigEndian.AppendUint16(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// box returns an MP4 box of the type and content.
func box(typ string, parts ...[]byte) []byte {
	body := cat(parts...)
	return cat(u32(uint32(8+len(body))), []byte(typ), body)
}

// fullBox returns an MP4 full box (version and flags first).
func fullBox(typ string, version byte, flags uint32, parts ...[]byte) []byte {
	return box(typ, append([]byte{version, byte(flags >> 16), byte(flags >> 8), byte(flags)}, cat(parts...)...))
}
