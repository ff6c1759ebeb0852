//! Any reserves, weights, fees and amounts: the formulas never panic, a conversion never pays
//! out the whole target reserve or more, and a round trip never returns more than went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_dex::{Converter, Reserve};

fn u128_at(d: &[u8], i: usize) -> u128 {
    let mut b = [0u8; 16];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i * 16 + k).copied().unwrap_or(0);
    }
    u128::from_be_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let icx = u128_at(data, 0);
    let eth = u128_at(data, 1);
    let amount = u128_at(data, 2);
    let wi = (u128_at(data, 3) % 1_000_001) as u32;
    let we = (u128_at(data, 4) % 1_000_001) as u32;
    let fee = (u128_at(data, 5) % 200_000) as u32;
    let Ok(mut c) = Converter::new(wi, we, fee) else {
        return;
    };
    c.icx = icx;
    c.eth = eth;
    c.supply = icx;
    if let Ok(q) = c.quote(Reserve::Eth, amount) {
        assert!(q.amount < icx.max(1));
        let mut after = c.clone();
        if after.convert(Reserve::Eth, amount, 0).is_ok() {
            if let Ok(back) = after.quote(Reserve::Icx, q.amount) {
                assert!(back.amount <= amount, "a round trip made money");
            }
        }
    }
    let _ = nexus_dex::purchase_return(icx, eth, wi, amount);
    let _ = nexus_dex::sale_return(icx, eth, wi, amount);
    let _ = c.remove_liquidity(amount);
});
