//! Statements that write a batch of rows at once (bulk jobs record
//! hundreds of files per transaction): one `VALUES` list of a fixed width,
//! so every chunk of a batch runs the one prepared statement; a short
//! chunk repeats its last row up to that width, which the statements
//! written for it make harmless (an `UPDATE ... FROM` changes a row once,
//! an `IN` list or a `SELECT DISTINCT` sees a value once).

/// Rows per batch statement.
pub(crate) const WIDTH: usize = 32;

/// A `VALUES` list of [`WIDTH`] rows: `columns` holds each column's
/// template, with `{}` where its placeholder goes (`CAST({} AS BIGINT)`
/// types a parameter PostgreSQL would otherwise read as text); the
/// placeholders count up row by row from `$first`.
pub(crate) fn values_list(columns: &[&str], first: usize) -> String {
    values_rows(columns, first, WIDTH)
}

/// [`values_list`] of `rows` rows (statements that cannot repeat a row).
pub(crate) fn values_rows(columns: &[&str], first: usize, rows: usize) -> String {
    let rows: Vec<String> = (0..rows)
        .map(|row| {
            let cells: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(column, template)| template.replace("{}", &format!("${}", first + row * columns.len() + column)))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    format!("VALUES {}", rows.join(", "))
}

/// A chunk of at most [`WIDTH`] rows, its last row repeated up to the width.
pub(crate) fn padded<T>(chunk: &[T]) -> impl Iterator<Item = &T> + Clone {
    let last = chunk.last().expect("chunks are not empty");
    chunk.iter().chain(std::iter::repeat_n(last, WIDTH - chunk.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_count_up_row_by_row() {
        let list = values_list(&["CAST({} AS BIGINT)", "{}"], 3);
        assert!(list.starts_with("VALUES (CAST($3 AS BIGINT), $4), (CAST($5 AS BIGINT), $6), "), "{list}");
        assert!(list.ends_with(&format!("(CAST(${} AS BIGINT), ${})", 1 + 2 * WIDTH, 2 + 2 * WIDTH)), "{list}");
        let rows: Vec<_> = padded(&[1, 2]).collect();
        assert_eq!(rows.len(), WIDTH);
        assert!(rows[2..].iter().all(|row| **row == 2));
    }
}
