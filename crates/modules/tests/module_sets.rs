//! `--modules` specifications and module-set directories: what they accept, and the clear
//! errors for what they do not.

use sdvp_core::ModuleKind;
use sdvp_modules::set::{read_module_set, write_module_set, Base, ModulesSpec};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures")
        .join(name)
}

fn set_of_fixtures(dir: &Path) {
    let text = serde_json::json!({
        "vqa": {"arch": "blip-vqa", "weights": fixture("blip")},
        "detect": {"arch": "owlvit", "weights": fixture("owlvit"), "options": {"threshold": 0.2}},
        "verify": {"arch": "clip", "weights": fixture("clip")},
        "classify": {"arch": "clip", "weights": fixture("clip")},
    });
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("modules.json"), text.to_string()).unwrap();
}

fn err(spec: &str) -> String {
    match ModulesSpec::parse(spec, None) {
        Ok(s) => panic!("{spec} parsed: {s:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_set_directory_reads_resolves_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    set_of_fixtures(&set);
    let mods = read_module_set(&set).unwrap();
    assert_eq!(mods.len(), 4);
    let copy = tmp.path().join("copy");
    write_module_set(&copy, &mods).unwrap();
    assert_eq!(read_module_set(&copy).unwrap(), mods);
    let spec = ModulesSpec::parse(set.to_str().unwrap(), None).unwrap();
    assert_eq!(spec.base, Base::Set(set.clone()));
    assert_eq!(spec.resolved().unwrap().len(), 4);
}

#[test]
fn overrides_replace_one_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    set_of_fixtures(&set);
    let teacher = tmp.path().join("teacher");
    std::fs::create_dir_all(&teacher).unwrap();
    std::fs::write(
        teacher.join("modules.json"),
        serde_json::json!({"vqa": {"arch": "blip-vqa", "weights": fixture("blip"), "options": {"decode": "beam"}}}).to_string(),
    )
    .unwrap();
    let spec = format!("{},vqa={}", set.display(), teacher.display());
    let r = ModulesSpec::parse(&spec, None).unwrap().resolved().unwrap();
    let vqa = r.iter().find(|m| m.kind == ModuleKind::Vqa).unwrap();
    assert_eq!(vqa.options["decode"], "beam");
    let spec = format!(
        "oracle:{},detect=owlvit:{}",
        tmp.path().display(),
        fixture("owlvit").display()
    );
    let s = ModulesSpec::parse(&spec, None).unwrap();
    assert!(matches!(s.base, Base::Oracle(_)));
    assert_eq!(s.resolved().unwrap().len(), 1);
}

#[test]
fn set_option_changes_only_a_module_of_the_named_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    set_of_fixtures(&set);
    let mut spec = ModulesSpec::parse(set.to_str().unwrap(), None).unwrap();
    let threshold = |s: &ModulesSpec| {
        s.resolved()
            .unwrap()
            .into_iter()
            .find(|m| m.kind == ModuleKind::Detect)
            .unwrap()
            .options["threshold"]
            .clone()
    };
    assert_eq!(threshold(&spec), 0.2);
    assert!(spec
        .set_option(ModuleKind::Detect, "owlvit", "threshold", 0.01.into())
        .unwrap());
    assert_eq!(threshold(&spec), 0.01);
    // The other kinds keep their entries; a kind of another architecture is left alone.
    assert_eq!(spec.resolved().unwrap().len(), 4);
    assert!(!spec
        .set_option(ModuleKind::Vqa, "owlvit", "threshold", 0.01.into())
        .unwrap());
    let oracle = format!("oracle:{}", tmp.path().display());
    let mut spec = ModulesSpec::parse(&oracle, None).unwrap();
    assert!(!spec
        .set_option(ModuleKind::Detect, "owlvit", "threshold", 0.01.into())
        .unwrap());
}

#[test]
fn bad_specifications_name_what_is_wrong() {
    let blip = fixture("blip");
    let owl = fixture("owlvit");
    let e = err(&format!("oracle:x,colour=blip-vqa:{}", blip.display()));
    assert!(e.contains("unknown module kind `colour`"), "{e}");
    let e = err(&format!("oracle:x,vqa=blip2:{}", blip.display()));
    assert!(e.contains("blip2"), "{e}");
    let e = err("oracle:x,vqa=blip-vqa:/no/such/dir");
    assert!(e.contains("does not exist"), "{e}");
    let e = err(&format!("oracle:x,vqa=blip-vqa:{}", owl.display()));
    assert!(
        e.contains("`owlvit`") && e.contains("BlipForQuestionAnswering"),
        "{e}"
    );
    let e = err(&format!("oracle:x,vqa=clip:{}", fixture("clip").display()));
    assert!(e.contains("cannot answer `vqa`"), "{e}");
    let e = err("no-such-base");
    assert!(e.contains("unknown --modules base"), "{e}");
    let e = err("vqa=x");
    assert!(e.contains("first part must be a base"), "{e}");
    let e = err("oracle:x,vqa=/no/set");
    assert!(e.contains("not a module set"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("modules.json"),
        r#"{"vqa": {"arch": "blip-vqa", "weights": "w", "colour": 1}}"#,
    )
    .unwrap();
    let e = err(tmp.path().to_str().unwrap());
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn a_checkpoint_that_fails_to_load_fails_its_calls_not_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    // config.json says BLIP, the weights file is garbage.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(fixture("blip").join("config.json"), bad.join("config.json")).unwrap();
    std::fs::write(bad.join("model.safetensors"), b"not safetensors").unwrap();
    let spec = format!(
        "oracle:{},vqa=blip-vqa:{}",
        tmp.path().display(),
        bad.display()
    );
    // An oracle base with no scenes file is an error at build time...
    assert!(ModulesSpec::parse(&spec, None)
        .unwrap()
        .build(Default::default())
        .is_err());
    // ...a broken checkpoint only when it is first called.
    std::fs::write(tmp.path().join("scenes.jsonl"), "").unwrap();
    let b = ModulesSpec::parse(&spec, None)
        .unwrap()
        .build(Default::default())
        .unwrap();
    let r = b.run_batch(
        ModuleKind::Vqa,
        &[sdvp_core::Request::Vqa {
            image: sdvp_core::ImageRef::new("x", 4, 4),
            question: "q".into(),
        }],
    );
    let e = r[0].as_ref().unwrap_err();
    assert!(
        e.message.contains("model.safetensors") || e.message.contains("safetensors"),
        "{}",
        e.message
    );
}

/// A weights folder with a manifest: a checkpoint whose sha256 differs (truncated,
/// corrupted) fails its calls with an error naming the file and the rebuild command; the
/// intact one loads.
#[test]
fn a_weight_file_that_does_not_match_the_manifest_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("weights");
    let vqa = weights.join("vqa");
    std::fs::create_dir_all(&vqa).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("blip").join(f), vqa.join(f)).unwrap();
    }
    let bytes = std::fs::read(vqa.join("model.safetensors")).unwrap();
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&bytes))
    };
    std::fs::write(
        weights.join("modules.json"),
        serde_json::json!({"vqa": {"arch": "blip-vqa", "weights": "vqa"}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        weights.join("manifest.json"),
        serde_json::json!({"schema": "sdvp.weights/1",
                           "files": {"vqa/model.safetensors": sha}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(tmp.path().join("scenes.jsonl"), "").unwrap();
    let request = [sdvp_core::Request::Vqa {
        image: sdvp_core::ImageRef::new("x", 4, 4),
        question: "what color is the star?".into(),
    }];
    let mods = read_module_set(&weights).unwrap();
    assert_eq!(mods[0].sha256.as_deref(), Some(sha.as_str()));
    // Intact: the call gets past loading (the image itself is missing, which is another error).
    let spec = weights.display().to_string();
    let b = ModulesSpec::parse(&spec, None)
        .unwrap()
        .build(Default::default())
        .unwrap();
    let e = b.run_batch(ModuleKind::Vqa, &request)[0]
        .clone()
        .unwrap_err();
    assert!(!e.message.contains("manifest"), "{}", e.message);
    // Truncated: the error names the file, the mismatch and how to rebuild.
    std::fs::write(vqa.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let b = ModulesSpec::parse(&spec, None)
        .unwrap()
        .build(Default::default())
        .unwrap();
    let e = b.run_batch(ModuleKind::Vqa, &request)[0]
        .clone()
        .unwrap_err();
    assert!(
        e.message.contains("model.safetensors")
            && e.message.contains("manifest")
            && e.message.contains("sdvp train all"),
        "{}",
        e.message
    );
    // Missing: the same hint.
    std::fs::remove_file(vqa.join("model.safetensors")).unwrap();
    let b = ModulesSpec::parse(&spec, None)
        .unwrap()
        .build(Default::default())
        .unwrap();
    let e = b.run_batch(ModuleKind::Vqa, &request)[0]
        .clone()
        .unwrap_err();
    assert!(e.message.contains("sdvp train all"), "{}", e.message);
}
