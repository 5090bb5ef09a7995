//! Project lists of any size, kept compact: a whole public index lists
//! about 740,000 projects, which as one `ProjectListEntry` (two `String`s)
//! each would take some 80 MB. A [`NameList`] keeps every name in one
//! text buffer and 16 bytes of bookkeeping per project (about 30 MB at
//! that size), sorted by normalized name, so it can be merged with other
//! lists and rendered as a stream, and searched by name in a few
//! milliseconds ([`NameList::search`]).

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::name::{NormalizedName, is_valid_name};

/// The longest project name a [`NameList`] keeps (longer ones are
/// skipped: no real project comes near it).
pub const MAX_NAME_LEN: usize = u16::MAX as usize;

/// Marks "no serial" in [`Slot::serial`].
const NO_SERIAL: u64 = u64::MAX;

/// One project of a list, borrowed from where the list keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedProject<'a> {
    /// The normalized name (the link).
    pub name: &'a str,
    /// The name as the project spells it.
    pub display_name: &'a str,
    /// The serial of the project's last change, when the list says.
    pub last_serial: Option<u64>,
}

/// Where one project's names sit in the text buffer: the normalized name
/// at `start`, then (when it differs) the display name right after it.
#[derive(Clone, Copy, Debug)]
struct Slot {
    start: u32,
    name_len: u16,
    /// 0 when the display name is the normalized name.
    display_len: u16,
    serial: u64,
}

/// A sorted list of project names (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct NameList {
    /// Every slot's names, in slot order, each project's followed by `\n`
    /// (which no name holds, so a search never matches across two).
    text: String,
    slots: Vec<Slot>,
}

/// Builds a [`NameList`] from names in any order.
#[derive(Debug, Default)]
pub struct NameListBuilder {
    text: String,
    slots: Vec<Slot>,
}

impl NameListBuilder {
    /// Adds a project by its display name. Invalid (or absurdly long)
    /// names are skipped; returns whether it was kept. Of two spellings
    /// of one project, the first added wins.
    pub fn push(&mut self, display_name: &str, last_serial: Option<u64>) -> bool {
        let display_name = display_name.trim();
        if display_name.len() > MAX_NAME_LEN || !is_valid_name(display_name) {
            return false;
        }
        let Ok(name) = NormalizedName::new(display_name) else { return false };
        self.push_slot(name.as_str(), display_name, last_serial);
        true
    }

    fn push_slot(&mut self, name: &str, display_name: &str, last_serial: Option<u64>) {
        let Ok(start) = u32::try_from(self.text.len()) else { return };
        self.text.push_str(name);
        let display_len = if display_name == name {
            0
        } else {
            self.text.push_str(display_name);
            display_name.len() as u16
        };
        self.text.push('\n');
        self.slots.push(Slot {
            start,
            name_len: name.len() as u16,
            display_len,
            serial: last_serial.unwrap_or(NO_SERIAL),
        });
    }

    /// Sorts by normalized name, keeps the first of each name, and lays
    /// the text out in that order.
    pub fn finish(self) -> NameList {
        let Self { text, mut slots } = self;
        let name = |slot: &Slot| &text[slot.start as usize..slot.start as usize + slot.name_len as usize];
        slots.sort_by(|a, b| name(a).cmp(name(b)));
        slots.dedup_by(|later, earlier| name(later) == name(earlier));
        let mut sorted = NameListBuilder { text: String::with_capacity(text.len()), slots: Vec::new() };
        sorted.slots.reserve_exact(slots.len());
        for slot in &slots {
            let listed = listed(&text, slot);
            sorted.push_slot(listed.name, listed.display_name, listed.last_serial);
        }
        NameList { text: sorted.text, slots: sorted.slots }
    }
}

/// Where a slot's record (name, display spelling, newline) ends in the
/// text.
fn record_end(slot: &Slot) -> usize {
    slot.start as usize + slot.name_len as usize + slot.display_len as usize + 1
}

fn listed<'a>(text: &'a str, slot: &Slot) -> ListedProject<'a> {
    let start = slot.start as usize;
    let name_end = start + slot.name_len as usize;
    let name = &text[start..name_end];
    let display_name = if slot.display_len == 0 { name } else { &text[name_end..name_end + slot.display_len as usize] };
    let last_serial = (slot.serial != NO_SERIAL).then_some(slot.serial);
    ListedProject { name, display_name, last_serial }
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchHits<'a> {
    /// The best matches, best first: the project of exactly that name,
    /// then names starting with the query, then the other names holding
    /// it, each group in name order.
    pub projects: Vec<ListedProject<'a>>,
    /// How many names hold the query in all.
    pub total: usize,
}

impl NameList {
    /// How many projects.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The heap memory the list holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.slots.capacity() * size_of::<Slot>()
    }

    /// Every project, in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ListedProject<'_>> + '_ {
        self.slots.iter().map(|slot| listed(&self.text, slot))
    }

    /// The list as text to keep and read back with
    /// [`NameList::from_text`]: one project a line, its display name, then
    /// a space and its serial when it has one.
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.text.len() + self.slots.len() * 8);
        for project in self.iter() {
            text.push_str(project.display_name);
            match project.last_serial {
                Some(serial) => writeln!(text, " {serial}").expect("writing to a String never fails"),
                None => text.push('\n'),
            }
        }
        text
    }

    /// Reads a list written by [`NameList::to_text`]; a line that does not
    /// hold a valid name (and serial) is skipped.
    pub fn from_text(text: &str) -> NameList {
        let mut builder = NameListBuilder::default();
        for line in text.lines() {
            let (name, serial) = match line.split_once(' ') {
                None => (line, None),
                Some((name, serial)) => match serial.parse() {
                    Ok(serial) => (name, Some(serial)),
                    Err(_) => continue,
                },
            };
            builder.push(name, serial);
        }
        builder.finish()
    }

    /// The project of this normalized name.
    pub fn get(&self, name: &str) -> Option<ListedProject<'_>> {
        let index = self.slots.binary_search_by(|slot| listed(&self.text, slot).name.cmp(name)).ok()?;
        Some(listed(&self.text, &self.slots[index]))
    }

    /// The projects whose normalized name holds `query` (normalized the
    /// way names are: lowercase, runs of `-`, `_`, `.` as one `-`), at most
    /// `limit` of them, best first (see [`SearchHits`]). One pass over the
    /// names; an empty query finds nothing.
    pub fn search(&self, query: &str, limit: usize) -> SearchHits<'_> {
        let query = normalize_query(query);
        if query.is_empty() {
            return SearchHits::default();
        }
        let (mut exact, mut prefixed, mut inside) = (Vec::new(), Vec::new(), Vec::new());
        let mut total = 0;
        let finder = memchr::memmem::Finder::new(query.as_bytes());
        let text = self.text.as_bytes();
        let mut slots = self.slots.iter();
        let mut slot = slots.next();
        let mut from = 0;
        // Each record is a name, its display spelling (when it differs)
        // and a newline, back to back. After the first match in a record,
        // the search goes on from the next record: a name counts once, and
        // a query found in nearly every name costs one find per name, not
        // one per occurrence.
        while let Some(found) = finder.find(&text[from..]) {
            let at = from + found;
            while let Some(skipped) = slot
                && record_end(skipped) <= at
            {
                slot = slots.next();
            }
            let Some(holder) = slot else { break };
            let start = holder.start as usize;
            if at + query.len() <= start + holder.name_len as usize {
                total += 1;
                let group = match (at == start, holder.name_len as usize == query.len()) {
                    (true, true) => &mut exact,
                    (true, false) => &mut prefixed,
                    (false, _) => &mut inside,
                };
                if group.len() < limit {
                    group.push(listed(&self.text, holder));
                }
            }
            from = record_end(holder);
            slot = slots.next();
        }
        let mut projects = exact;
        projects.extend(prefixed);
        projects.extend(inside);
        projects.truncate(limit);
        SearchHits { projects, total }
    }
}

/// Searches several lists as one (their merge, see [`merge_sorted`]): the
/// first list that holds a name gives its entry, and a name held by
/// several counts once. Each list is scanned once; names are looked up in
/// the other lists only for the matches of all lists but the largest.
pub fn search_all<'a>(lists: &[&'a NameList], query: &str, limit: usize) -> SearchHits<'a> {
    let normalized = normalize_query(query);
    let largest = (0..lists.len()).max_by_key(|&i| lists[i].len());
    let mut projects: Vec<(usize, ListedProject<'a>)> = Vec::new();
    let mut total = 0;
    let mut seen_in_smaller = std::collections::HashSet::new();
    for (i, list) in lists.iter().enumerate() {
        let small = Some(i) != largest;
        let hits = list.search(query, if small { usize::MAX } else { limit });
        total += hits.total;
        for (position, project) in hits.projects.into_iter().enumerate() {
            if small && seen_in_smaller.insert(project.name) {
                let holders = lists.iter().filter(|other| other.get(project.name).is_some()).count();
                total -= holders - 1;
            }
            if position < limit && !projects.iter().any(|(_, p)| p.name == project.name) {
                projects.push((i, project));
            }
        }
    }
    // Where two lists hold a name, the first list's entry wins.
    for entry in &mut projects {
        if let Some((first, project)) =
            lists.iter().enumerate().take(entry.0).find_map(|(j, list)| Some((j, list.get(entry.1.name)?)))
        {
            *entry = (first, project);
        }
    }
    projects.sort_by(|(_, a), (_, b)| (rank(a.name, &normalized), a.name).cmp(&(rank(b.name, &normalized), b.name)));
    projects.truncate(limit);
    SearchHits { projects: projects.into_iter().map(|(_, p)| p).collect(), total }
}

/// 0 for the name itself, 1 for a name starting with the query, 2 for
/// the others.
fn rank(name: &str, query: &str) -> u8 {
    if name == query {
        0
    } else if name.starts_with(query) {
        1
    } else {
        2
    }
}

/// A search query as names are normalized: ASCII lowercase, each run of
/// `-`, `_`, `.` (and spaces) one `-`, other characters dropped, no `-`
/// at either end unless the query is only that.
pub fn normalize_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut separator = false;
    for c in query.trim().chars() {
        if matches!(c, '-' | '_' | '.' | ' ') {
            separator = true;
        } else if c.is_ascii_alphanumeric() {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Merges lists sorted by name into one sorted list: where several hold a
/// name, the one listed first wins (a hosted project before the upstream
/// one it hides).
pub fn merge_sorted<'a, I>(lists: Vec<I>) -> impl Iterator<Item = ListedProject<'a>>
where
    I: Iterator<Item = ListedProject<'a>>,
{
    let mut lists: Vec<_> = lists.into_iter().map(Iterator::peekable).collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, ListedProject<'a>)> = None;
        for (i, list) in lists.iter_mut().enumerate() {
            if let Some(head) = list.peek()
                && best.is_none_or(|(_, b)| head.name.cmp(b.name) == Ordering::Less)
            {
                best = Some((i, *head));
            }
        }
        let (_, winner) = best?;
        for list in &mut lists {
            list.next_if(|head| head.name == winner.name);
        }
        Some(winner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> NameList {
        let mut builder = NameListBuilder::default();
        for (i, name) in names.iter().enumerate() {
            builder.push(name, Some(i as u64));
        }
        builder.finish()
    }

    #[test]
    fn sorted_deduplicated_first_spelling_wins() {
        let names = list(&["Zope.Interface", "django", "zope_interface", "not valid!", "Django", "a"]);
        let all: Vec<_> = names.iter().map(|p| (p.name, p.display_name, p.last_serial)).collect();
        assert_eq!(
            all,
            [("a", "a", Some(5)), ("django", "django", Some(1)), ("zope-interface", "Zope.Interface", Some(0))]
        );
        assert_eq!(names.get("django").unwrap().last_serial, Some(1));
        assert!(names.get("flask").is_none());
    }

    #[test]
    fn the_text_form_reads_back_the_same_list() {
        let mut builder = NameListBuilder::default();
        builder.push("Zope.Interface", Some(7));
        builder.push("django", None);
        builder.push("a", Some(0));
        let names = builder.finish();
        let text = names.to_text();
        assert_eq!(text, "a 0\ndjango\nZope.Interface 7\n");
        let back = NameList::from_text(&text);
        assert!(back.iter().eq(names.iter()));
        let damaged = NameList::from_text("ok 1\nbad serial\nnot valid!\n\nlast");
        assert_eq!(damaged.iter().map(|p| p.name).collect::<Vec<_>>(), ["last", "ok"]);
    }

    #[test]
    fn search_ranks_exact_then_prefix_then_inside() {
        let names = list(&["requests-oauth", "requests", "grequests", "req", "Requests_Toolbelt", "other"]);
        let hits = names.search(" Requests ", 10);
        let found: Vec<_> = hits.projects.iter().map(|p| p.name).collect();
        assert_eq!(found, ["requests", "requests-oauth", "requests-toolbelt", "grequests"]);
        assert_eq!(hits.total, 4);
        let limited = names.search("requests", 2);
        assert_eq!(limited.projects.len(), 2);
        assert_eq!(limited.total, 4);
        // Separators are normalized; a match never spans two names or a
        // display name.
        assert_eq!(names.search("requests.toolbelt", 10).projects[0].display_name, "Requests_Toolbelt");
        assert_eq!(names.search("sreq", 10).total, 0);
        assert_eq!(names.search("Toolbelt", 10).total, 1);
        assert_eq!(names.search("--", 10).total, 0);
    }

    #[test]
    fn a_name_counts_once_and_its_display_spelling_is_not_searched() {
        let names = list(&["Data-Data", "Xa", "b", "a_b"]);
        let hits = names.search("a", 10);
        assert_eq!(hits.total, 3, "{hits:?}");
        assert_eq!(hits.projects.iter().map(|p| p.name).collect::<Vec<_>>(), ["a-b", "data-data", "xa"]);
        assert_eq!(names.search("data", 10).total, 1);
        // "a-b" then its spelling "a_b": "ba" only spans the two.
        assert_eq!(names.search("ba", 10).total, 0);
        assert_eq!(names.search("b", 10).total, 2);
    }

    #[test]
    fn merge_keeps_the_first_list_winning() {
        let hosted = list(&["Internal", "Shared-Name"]);
        let upstream = list(&["shared.name", "alpha", "zeta"]);
        let merged: Vec<_> = merge_sorted(vec![hosted.iter(), upstream.iter()]).map(|p| p.display_name).collect();
        assert_eq!(merged, ["alpha", "Internal", "Shared-Name", "zeta"]);
        let hits = search_all(&[&hosted, &upstream], "name", 10);
        assert_eq!(hits.total, 1, "a name both hold counts once");
        assert_eq!(hits.projects.iter().map(|p| p.display_name).collect::<Vec<_>>(), ["Shared-Name"]);
        let hits = search_all(&[&hosted, &upstream], "a", 2);
        assert_eq!(hits.total, 4);
        assert_eq!(hits.projects.iter().map(|p| p.name).collect::<Vec<_>>(), ["alpha", "internal"]);
    }
}
