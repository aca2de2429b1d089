//! Hostile Yjs binaries cannot make the server allocate: a counting global
//! allocator measures the peak bytes allocated while
//! `collab_engine::crdt` checks each probe of `tests/probes`, which must
//! stay under 4 MiB and end in an error. (Calling yrs' decoders directly,
//! the 2^28 probes reserve hundreds of MiB to GiBs.)

mod probes;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use collab_engine::crdt;
use probes::{Kind, Probe};
use yrs::{Text, Transact};

/// The most a probe may make the decoding allocate.
const BOUND: usize = 4 << 20;

/// [`System`], counting the bytes currently allocated and the peak.
struct Counting;

/// Bytes allocated now.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// The largest `CURRENT` since it was last reset.
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::SeqCst);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are
// updated around it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as it is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time: the counters are global.
static MEASURING: Mutex<()> = Mutex::new(());

/// Runs `f`; answers its result and the peak bytes allocated above what
/// was allocated when it started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    (out, peak)
}

/// Feeds `probe` to the crdt function for its kind; answers whether it
/// was refused and the peak allocation during the call.
fn measure(probe: &Probe) -> (bool, usize) {
    match probe.kind {
        Kind::Update => {
            let raw = Bytes::from(probe.bytes.clone());
            let (answer, peak) = peak_during(|| crdt::decode_update(raw).is_err());
            (answer, peak)
        }
        Kind::StateVector => peak_during(|| crdt::decode_state_vector(&probe.bytes).is_err()),
        Kind::Awareness => {
            peak_during(|| crdt::validate_awareness(&probe.bytes, usize::MAX).is_err())
        }
    }
}

#[test]
fn the_allocator_measures_allocations() {
    let (len, peak) = peak_during(|| std::hint::black_box(vec![1u8; 1 << 20]).len());
    assert_eq!(len, 1 << 20);
    assert!(
        peak >= 1 << 20,
        "a 1 MiB allocation measured as {peak} bytes"
    );

    // A real update carrying 1 MiB of text: yrs copies the text.
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    text.insert(&mut txn, 0, &"x".repeat(1 << 20));
    let update = Bytes::from(txn.encode_update_v1());
    drop(txn);
    let (valid, peak) = peak_during(|| crdt::decode_update(update).is_ok());
    assert!(valid, "a real update is accepted");
    assert!(
        peak >= 1 << 20,
        "decoding 1 MiB of text measured as {peak} bytes"
    );
}

#[test]
fn hostile_binaries_are_refused_without_allocating() {
    let probes = probes::all();
    assert!(probes.len() > 30);
    let mut report = Vec::new();
    for probe in &probes {
        let (refused, peak) = measure(probe);
        report.push(format!("{:>9} bytes  {}", peak, probe.name));
        assert!(refused, "{} was accepted", probe.name);
        assert!(
            peak < BOUND,
            "{} made the decoding allocate {peak} bytes",
            probe.name
        );
    }
    eprintln!("peak allocation per probe:\n{}", report.join("\n"));
}
