use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

#[derive(Clone)]
struct Filter {
    min_score: f64,
}

#[derive(Clone)]
struct Report;

// Every argument not in `cache_skip` is part of the key and must be `Hash`.
#[self_healing(cache = "30s")]
fn search(term: String, filter: Filter) -> Result<Vec<String>, AppError> {
    Ok(vec![format!("{term}>{}", filter.min_score)])
}

// The cached value must be `Clone + Send + Sync + 'static`.
#[self_healing(cache = "30s")]
fn report(id: u64) -> Result<std::rc::Rc<Report>, AppError> {
    let _ = id;
    Ok(std::rc::Rc::new(Report))
}

fn main() {
    let _ = search(String::new(), Filter { min_score: 0.5 });
    let _ = report(1);
}

// Every wrapped function's error type represents a call the healer refused (kept last, so the
// lines above and their expected errors stay put).
impl From<self_healing::Rejected> for AppError {
    fn from(_: self_healing::Rejected) -> Self {
        AppError
    }
}
