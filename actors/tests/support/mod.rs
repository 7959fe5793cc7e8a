pub mod pg;

use std::time::Duration;

use orderflow_actors::store::Store;

/// Waits until `store` is the last handle on the database (every actor that held
/// one has stopped), so that reopening it in the same process finds it free.
#[allow(dead_code)] // the PostgreSQL-only tests have no store
pub async fn until_released(store: Store) {
    for _ in 0..500 {
        if store.handle_count() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("actors did not release the store");
}
