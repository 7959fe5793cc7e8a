//! A variant group as `GET /groups/{handle}` shows it, summed up from its active
//! products. Both backends read the products (redb through its group index,
//! PostgreSQL by the `group_handle` column) and sum them up here.

use actix::Message;

use super::Product;
use crate::common::StoreError;
use crate::domain::{Category, Description, GroupHandle, ProductName, fold_case};

/// Read one variant group: `None` when it has no active product.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Option<Group>, StoreError>")]
pub struct GetGroup {
    pub handle: GroupHandle,
}

/// One option of a group with its values, in first-seen order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOption {
    pub name: String,
    pub values: Vec<String>,
}

/// A variant group: what its products share, and the products.
#[derive(Debug, Clone)]
pub struct Group {
    pub handle: GroupHandle,
    /// The first product's (the earliest created; by SKU among equals).
    pub name: ProductName,
    pub description: Option<Description>,
    pub category: Category,
    pub options: Vec<GroupOption>,
    /// Its active products, first product first.
    pub variants: Vec<Product>,
    pub price_min: u64,
    pub price_max: u64,
    /// Whether any variant has stock.
    pub in_stock: bool,
}

impl Group {
    /// The group of `variants` (its active products, in any order), `None` when
    /// there are none.
    pub fn of(handle: GroupHandle, mut variants: Vec<Product>) -> Option<Self> {
        variants.sort_by(|a, b| {
            (a.row.created_at, a.sku.as_str()).cmp(&(b.row.created_at, b.sku.as_str()))
        });
        let first = variants.first()?.row.clone();
        let mut options: Vec<GroupOption> = Vec::new();
        for variant in &variants {
            for (name, value) in variant.row.attributes.options.iter() {
                let key = fold_case(name);
                let option = match options.iter().position(|o| fold_case(&o.name) == key) {
                    Some(i) => &mut options[i],
                    None => {
                        options.push(GroupOption {
                            name: name.to_owned(),
                            values: Vec::new(),
                        });
                        options.last_mut().expect("just pushed")
                    }
                };
                if !option
                    .values
                    .iter()
                    .any(|v| fold_case(v) == fold_case(value))
                {
                    option.values.push(value.to_owned());
                }
            }
        }
        let prices = variants.iter().map(|v| v.row.price.get());
        Some(Self {
            handle,
            name: first.name,
            description: first.description,
            category: first.category,
            options,
            price_min: prices.clone().min()?,
            price_max: prices.max()?,
            in_stock: variants.iter().any(|v| v.stock > 0),
            variants,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Attributes, ProductRow};
    use crate::domain::{Cents, Options, Sku, TaxClass, Timestamp, WeightGrams};

    fn variant(
        sku: &str,
        created: i64,
        price: i64,
        stock: u64,
        options: &[(&str, &str)],
    ) -> Product {
        Product {
            sku: Sku::parse(sku).unwrap(),
            stock,
            row: ProductRow {
                name: ProductName::parse(&format!("Tee {sku}")).unwrap(),
                category: Category::parse("Apparel > Tees").unwrap(),
                description: None,
                price: Cents::new(price).unwrap(),
                archived: false,
                created_at: Timestamp(created),
                updated_at: Timestamp(created),
                attributes: Attributes {
                    group: Some(GroupHandle::parse("tee").unwrap()),
                    options: Options::parse(options.iter().copied()).unwrap(),
                    weight: WeightGrams::default(),
                    tax_class: TaxClass::default(),
                    barcode: None,
                },
            },
        }
    }

    #[test]
    fn a_group_sums_up_its_variants_first_product_first() {
        let group = Group::of(
            GroupHandle::parse("tee").unwrap(),
            vec![
                variant("B", 2, 1500, 0, &[("Size", "M"), ("Color", "Black")]),
                variant("A", 2, 1700, 0, &[("size", "L"), ("color", "black")]),
                variant("Z", 1, 1400, 3, &[("Size", "S"), ("Color", "White")]),
            ],
        )
        .unwrap();
        assert_eq!(group.name.as_str(), "Tee Z", "the earliest created");
        let skus: Vec<&str> = group.variants.iter().map(|v| v.sku.as_str()).collect();
        assert_eq!(skus, ["Z", "A", "B"], "then by SKU among equals");
        assert_eq!(
            group.options,
            [
                GroupOption {
                    name: "Size".into(),
                    values: vec!["S".into(), "L".into(), "M".into()]
                },
                GroupOption {
                    name: "Color".into(),
                    values: vec!["White".into(), "black".into()]
                },
            ]
        );
        assert_eq!(
            (group.price_min, group.price_max, group.in_stock),
            (1400, 1700, true)
        );
        assert!(Group::of(GroupHandle::parse("none").unwrap(), Vec::new()).is_none());
    }
}
