wit_bindgen::generate!({ world: "smuggler" });

struct Component;

impl Guest for Component {
    fn run(input: String) -> String {
        test::unknown_import::exfil::send(&input);
        input
    }
}

export!(Component);
