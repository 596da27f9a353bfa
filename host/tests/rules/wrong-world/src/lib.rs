wit_bindgen::generate!({ world: "not-a-rule" });

struct Component;

impl Guest for Component {
    fn run(input: String) -> String {
        input.to_uppercase()
    }
}

export!(Component);
