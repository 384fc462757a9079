//! Guest-side bindings and the conversions between them and the SDK's plain types. Used only
//! by the expansion of `export_renderer!` / `export_policy!`.

pub mod renderer {
    wit_bindgen::generate!({
        world: "renderer",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "opstack_plugin_sdk::__wasm::renderer",
    });
}

pub mod policy {
    wit_bindgen::generate!({
        world: "policy",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "opstack_plugin_sdk::__wasm::policy",
        with: { "opstack:plugin/types@0.1.0": crate::__wasm::renderer::opstack::plugin::types },
    });
}

pub use renderer::opstack::plugin::types;

use crate::CONTRACT_VERSION;

pub fn info_out(info: crate::PluginInfo, role: types::Role) -> types::PluginInfo {
    types::PluginInfo {
        name: info.name,
        version: info.version,
        kinds: info.kinds,
        role,
        contract_version: CONTRACT_VERSION.to_owned(),
    }
}

pub fn error_out(error: crate::PluginError) -> types::PluginError {
    match error {
        crate::PluginError::Invalid(problems) => types::PluginError::Invalid(problems),
        crate::PluginError::Internal(message) => types::PluginError::Internal(message),
    }
}

fn named_in(objects: Vec<types::NamedObject>) -> Vec<crate::NamedObject> {
    objects
        .into_iter()
        .map(|o| crate::NamedObject {
            purpose: o.purpose,
            name: o.name,
        })
        .collect()
}

pub fn render_input_in(input: types::RenderInput) -> crate::RenderInput {
    let network = input.network;
    crate::RenderInput {
        kind: input.kind,
        resource: input.resource,
        network: crate::NetworkContext {
            name: network.name,
            spec: network.spec,
            contracts: network
                .contracts
                .into_iter()
                .map(|c| crate::ContractAddress {
                    name: c.name,
                    address: c.address,
                })
                .collect(),
            secrets: named_in(network.secrets),
            config_maps: named_in(network.config_maps),
        },
        references: input
            .references
            .into_iter()
            .map(|r| crate::ResolvedReference {
                field: r.field,
                kind: r.kind,
                name: r.name,
                endpoints: r
                    .endpoints
                    .into_iter()
                    .map(|e| crate::Endpoint {
                        name: e.name,
                        url: e.url,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub fn render_output_out(output: crate::RenderOutput) -> types::RenderOutput {
    types::RenderOutput {
        objects: output.objects,
        warnings: output.warnings,
    }
}

pub fn check_input_in(input: types::CheckInput) -> crate::CheckInput {
    crate::CheckInput {
        input: render_input_in(input.input),
        objects: input.objects,
    }
}

pub fn check_output_out(output: crate::CheckOutput) -> types::CheckOutput {
    types::CheckOutput {
        violations: output
            .violations
            .into_iter()
            .map(|v| types::Violation {
                object: v.object,
                rule: v.rule,
                message: v.message,
            })
            .collect(),
        warnings: output.warnings,
    }
}
