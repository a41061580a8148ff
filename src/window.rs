//! A sliding window kept in slots: what the retry budget (deposits and withdrawals of the last
//! 10 s) and the 429 pattern (answers of the last second) count.

use std::time::Duration;

use tokio::time::Instant;

/// The last `length` of something, in `N` slots of `length / N`, each keyed by its tick (whole
/// slots since `start`). A slot is emptied when a later tick takes it over.
#[derive(Debug)]
pub(crate) struct Window<T, const N: usize> {
    start: Instant,
    slot: Duration,
    slots: [(u64, T); N],
}

impl<T: Copy + Default, const N: usize> Window<T, N> {
    pub(crate) fn new(start: Instant, length: Duration) -> Self {
        Window {
            start,
            slot: length / N as u32,
            slots: [(0, T::default()); N],
        }
    }

    /// The tick `now` falls in. Counted in `u64` nanoseconds (584 years), since a `u128`
    /// division costs a call to the runtime's division routine on every answer.
    pub(crate) fn tick(&self, now: Instant) -> u64 {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        nanos(now.saturating_duration_since(self.start)) / nanos(self.slot).max(1)
    }

    /// The tick to count `now` in, its slot emptied first if it held an older one. A time from
    /// before the window whose slot a newer tick uses (read long before, by a call that waited)
    /// is counted in the newest tick rather than erasing it.
    pub(crate) fn enter(&mut self, now: Instant) -> u64 {
        let mut tick = self.tick(now);
        if self.slots[Self::index(tick)].0 > tick {
            tick = self.slots.iter().map(|(t, _)| *t).max().unwrap_or(tick);
        }
        let slot = &mut self.slots[Self::index(tick)];
        if slot.0 != tick {
            *slot = (tick, T::default());
        }
        tick
    }

    /// The slot of `tick`, which [`enter`](Self::enter) returned.
    pub(crate) fn slot_mut(&mut self, tick: u64) -> &mut T {
        &mut self.slots[Self::index(tick)].1
    }

    /// The slots of the window that ends at `tick`, with their ticks.
    pub(crate) fn inside(&self, tick: u64) -> impl Iterator<Item = (u64, &T)> {
        self.slots
            .iter()
            .filter(move |(t, _)| t.saturating_add(N as u64) > tick && *t <= tick)
            .map(|(t, slot)| (*t, slot))
    }

    fn index(tick: u64) -> usize {
        (tick % N as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn a_slot_is_emptied_when_a_later_tick_takes_it_over() {
        let start = Instant::now();
        let mut window = Window::<u32, 10>::new(start, Duration::from_secs(1));
        let tick = window.enter(at(start, 50));
        *window.slot_mut(tick) += 1;
        let later = window.enter(at(start, 1_050));
        assert_eq!((tick, later), (0, 10));
        assert_eq!(*window.slot_mut(later), 0);
        assert_eq!(window.inside(later).map(|(_, n)| n).sum::<u32>(), 0);
    }

    #[test]
    fn a_time_from_before_the_window_counts_in_the_newest_tick_without_erasing_it() {
        let start = Instant::now();
        let mut window = Window::<u32, 10>::new(start, Duration::from_secs(1));
        let newest = window.enter(at(start, 1_050));
        *window.slot_mut(newest) += 1;
        // 1 s earlier, the same slot.
        let stale = window.enter(at(start, 50));
        assert_eq!(stale, newest);
        *window.slot_mut(stale) += 1;
        assert_eq!(window.inside(newest).map(|(_, n)| n).sum::<u32>(), 2);
    }
}
