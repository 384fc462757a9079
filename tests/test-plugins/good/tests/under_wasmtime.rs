//! The plugin author's loop: the built `.wasm` runs in the operator's sandbox via the SDK harness.

use opstack_plugin_sdk::harness::Harness;
use opstack_plugin_sdk::serde_json::Value;

#[test]
fn wasm_render_matches_the_native_render() {
    let plugin = Harness::load_built("test_plugin_good");
    let input = test_plugin_good::fixture_input();
    let in_sandbox = plugin.render(&input).unwrap();
    let native = test_plugin_good::render(&input).unwrap();
    let native: Vec<Value> = native
        .objects
        .iter()
        .map(|o| opstack_plugin_sdk::serde_json::from_str(o).unwrap())
        .collect();
    assert_eq!(in_sandbox.objects, native);
}

#[test]
fn built_plugin_fits_in_a_configmap() {
    let plugin = Harness::load_built("test_plugin_good");
    assert!(
        plugin.plugin().size() < 1 << 20,
        "{} bytes",
        plugin.plugin().size()
    );
}

#[test]
fn invalid_input_is_reported_by_validate_as_values() {
    let plugin = Harness::load_built("test_plugin_good");
    let mut input = test_plugin_good::fixture_input();
    input.network.secrets.clear();
    let err = plugin.validate(&input).unwrap_err();
    assert_eq!(err.reason(), "InvalidInput", "{err}");
}
