//! Pixels for module inputs, rebuilt from provenance.
//!
//! A request carries an [`ImageRef`] (source id + crop chain), never pixels. Backends ask
//! this cache for the pixels of a region; decoded source images are kept in an LRU bounded
//! in bytes, so a batch of crops of the same scene decodes it once and a long run does not
//! grow without bound.

use sdvp_core::{BBox, ImageRef};
use sdvp_data::ImageStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// 256 MiB of decoded RGB: about 1,300 world images or 90 full-HD photos.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// A crop of a source image and where its pixel (0, 0) lies in source coordinates.
pub struct Crop {
    pub pixels: image::RgbImage,
    pub origin: (f32, f32),
    /// Size of the source image the crop was cut from.
    pub source_size: (u32, u32),
}

struct Lru {
    map: HashMap<String, (Arc<image::RgbImage>, u64)>,
    bytes: usize,
    tick: u64,
}

/// Decoded source images, least recently used evicted first.
pub struct ImageCache {
    store: ImageStore,
    capacity: usize,
    lru: Mutex<Lru>,
}

/// The pixel rectangle `[x0, x1) × [y0, y1)` a region covers (rounded outwards, at least
/// one pixel), as `sdvp_data::crop_pixels` cuts it.
pub fn pixel_rect(region: BBox, width: u32, height: u32) -> (u32, u32, u32, u32) {
    let x0 = (region.x0.floor().max(0.0) as u32).min(width.saturating_sub(1));
    let y0 = (region.y0.floor().max(0.0) as u32).min(height.saturating_sub(1));
    let x1 = (region.x1.ceil().max(0.0) as u32).clamp(x0 + 1, width.max(x0 + 1));
    let y1 = (region.y1.ceil().max(0.0) as u32).clamp(y0 + 1, height.max(y0 + 1));
    (x0, y0, x1, y1)
}

impl ImageCache {
    pub fn new(store: ImageStore, capacity_bytes: usize) -> Self {
        Self {
            store,
            capacity: capacity_bytes,
            lru: Mutex::new(Lru {
                map: HashMap::new(),
                bytes: 0,
                tick: 0,
            }),
        }
    }

    /// Bytes of decoded pixels held now.
    pub fn bytes(&self) -> usize {
        self.lru.lock().map_or(0, |l| l.bytes)
    }

    /// The whole source image of `source`.
    pub fn source(&self, source: &str) -> anyhow::Result<Arc<image::RgbImage>> {
        {
            let mut lru = self
                .lru
                .lock()
                .map_err(|_| anyhow::anyhow!("image cache poisoned"))?;
            lru.tick += 1;
            let tick = lru.tick;
            if let Some((img, used)) = lru.map.get_mut(source) {
                *used = tick;
                return Ok(img.clone());
            }
        }
        let path = self
            .store
            .resolve(source)
            .ok_or_else(|| anyhow::anyhow!("no image file for source {source:?}"))?;
        let img = image::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot decode {}: {e}", path.display()))?
            .to_rgb8();
        let img = Arc::new(img);
        let size = img.as_raw().len();
        let mut lru = self
            .lru
            .lock()
            .map_err(|_| anyhow::anyhow!("image cache poisoned"))?;
        lru.tick += 1;
        let tick = lru.tick;
        if size <= self.capacity {
            while lru.bytes + size > self.capacity {
                let Some(oldest) = lru
                    .map
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some((gone, _)) = lru.map.remove(&oldest) {
                    lru.bytes -= gone.as_raw().len();
                }
            }
            if lru
                .map
                .insert(source.to_string(), (img.clone(), tick))
                .is_none()
            {
                lru.bytes += size;
            }
        }
        Ok(img)
    }

    /// The pixels `image` shows: its source cut to its region.
    pub fn crop(&self, image: &ImageRef) -> anyhow::Result<Crop> {
        self.crop_widened(image, None)
    }

    /// As [`ImageCache::crop`], with a region narrower or lower than `min_side` source
    /// pixels widened to it ([`BBox::widen_to`]; the widened crop may reach outside the
    /// region, into its source).
    pub fn crop_widened(&self, image: &ImageRef, min_side: Option<f32>) -> anyhow::Result<Crop> {
        let full = self.source(&image.source)?;
        let (w, h) = full.dimensions();
        let region = match min_side {
            Some(side) => image
                .region()
                .widen_to(side, &BBox::new(0.0, 0.0, w as f32, h as f32)),
            None => image.region(),
        };
        let (x0, y0, x1, y1) = pixel_rect(region, w, h);
        let pixels = image::imageops::crop_imm(full.as_ref(), x0, y0, x1 - x0, y1 - y0).to_image();
        Ok(Crop {
            pixels,
            origin: (x0 as f32, y0 as f32),
            source_size: (w, h),
        })
    }
}
