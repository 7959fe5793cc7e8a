//! The columns each kind of file may have, as closed sets: a record's values are
//! looked up by column ([`super::extract::RawRecord::get`]), never by a number
//! that happens to mean "price".

use super::naming::Kind;
use super::reject::RejectCode;

/// A column of one kind of file.
pub trait Column: Copy + 'static {
    /// Every column of the kind, in the order of [`Column::index`].
    const ALL: &'static [Self];
    /// The header name (matched without regard to case or surrounding spaces).
    fn name(self) -> &'static str;
    fn required(self) -> bool;
    /// Where its value sits in a record of this kind.
    fn index(self) -> usize;
    /// The reject code when the value is missing; `None` for an optional column,
    /// whose absence is not an error.
    fn missing(self) -> Option<RejectCode>;
    /// The reject code when a value is not valid (prices have their own).
    fn invalid(self) -> RejectCode;
    /// Whether a row that leaves it empty takes it from the first row of its
    /// product (Shopify's continuation rows); no column of the plain formats does.
    fn inherited(self) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductColumn {
    Sku,
    Name,
    Category,
    Price,
    Stock,
    Description,
    WeightGrams,
    TaxClass,
    Barcode,
    Group,
    Option1Name,
    Option1Value,
    Option2Name,
    Option2Value,
    Option3Name,
    Option3Value,
}

impl ProductColumn {
    /// The (name, value) columns of each option, in order.
    pub const OPTIONS: [(Self, Self); 3] = [
        (Self::Option1Name, Self::Option1Value),
        (Self::Option2Name, Self::Option2Value),
        (Self::Option3Name, Self::Option3Value),
    ];
}

impl Column for ProductColumn {
    const ALL: &'static [Self] = &[
        Self::Sku,
        Self::Name,
        Self::Category,
        Self::Price,
        Self::Stock,
        Self::Description,
        Self::WeightGrams,
        Self::TaxClass,
        Self::Barcode,
        Self::Group,
        Self::Option1Name,
        Self::Option1Value,
        Self::Option2Name,
        Self::Option2Value,
        Self::Option3Name,
        Self::Option3Value,
    ];
    fn name(self) -> &'static str {
        match self {
            Self::Sku => "sku",
            Self::Name => "name",
            Self::Category => "category",
            Self::Price => "price",
            Self::Stock => "stock",
            Self::Description => "description",
            Self::WeightGrams => "weight_grams",
            Self::TaxClass => "tax_class",
            Self::Barcode => "barcode",
            Self::Group => "group",
            Self::Option1Name => "option1_name",
            Self::Option1Value => "option1_value",
            Self::Option2Name => "option2_name",
            Self::Option2Value => "option2_value",
            Self::Option3Name => "option3_name",
            Self::Option3Value => "option3_value",
        }
    }
    fn required(self) -> bool {
        matches!(self, Self::Name | Self::Price)
    }
    fn index(self) -> usize {
        self as usize
    }
    fn missing(self) -> Option<RejectCode> {
        match self {
            Self::Name => Some(RejectCode::MissingName),
            Self::Price => Some(RejectCode::MissingPrice),
            // Optional: an absent value takes its default (a derived SKU, the
            // default category, no stock change, no description, 0 g, the
            // `standard` tax class, no barcode).
            Self::Sku
            | Self::Category
            | Self::Stock
            | Self::Description
            | Self::WeightGrams
            | Self::TaxClass
            | Self::Barcode
            | Self::Group
            | Self::Option1Name
            | Self::Option1Value
            | Self::Option2Name
            | Self::Option2Value
            | Self::Option3Name
            | Self::Option3Value => None,
        }
    }
    fn invalid(self) -> RejectCode {
        match self {
            Self::Sku => RejectCode::InvalidSku,
            Self::Name => RejectCode::InvalidName,
            Self::Category => RejectCode::InvalidCategory,
            Self::Price => RejectCode::PriceNotANumber,
            Self::Stock => RejectCode::InvalidStock,
            Self::Description => RejectCode::InvalidDescription,
            Self::WeightGrams => RejectCode::InvalidWeight,
            Self::TaxClass => RejectCode::InvalidTaxClass,
            Self::Barcode => RejectCode::InvalidBarcode,
            Self::Group => RejectCode::InvalidGroup,
            Self::Option1Name
            | Self::Option1Value
            | Self::Option2Name
            | Self::Option2Value
            | Self::Option3Name
            | Self::Option3Value => RejectCode::InvalidOptions,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderColumn {
    OrderRef,
    Customer,
    Sku,
    Quantity,
    UnitPrice,
}

impl Column for OrderColumn {
    const ALL: &'static [Self] = &[
        Self::OrderRef,
        Self::Customer,
        Self::Sku,
        Self::Quantity,
        Self::UnitPrice,
    ];
    fn name(self) -> &'static str {
        match self {
            Self::OrderRef => "order_ref",
            Self::Customer => "customer",
            Self::Sku => "sku",
            Self::Quantity => "quantity",
            Self::UnitPrice => "unit_price",
        }
    }
    fn required(self) -> bool {
        !matches!(self, Self::UnitPrice)
    }
    fn index(self) -> usize {
        self as usize
    }
    fn missing(self) -> Option<RejectCode> {
        match self {
            Self::OrderRef => Some(RejectCode::MissingOrderRef),
            Self::Customer => Some(RejectCode::MissingCustomer),
            Self::Sku => Some(RejectCode::MissingSku),
            Self::Quantity => Some(RejectCode::MissingQuantity),
            // Optional: the catalog's price is used.
            Self::UnitPrice => None,
        }
    }
    fn invalid(self) -> RejectCode {
        match self {
            Self::OrderRef => RejectCode::InvalidOrderRef,
            Self::Customer => RejectCode::InvalidCustomer,
            Self::Sku => RejectCode::InvalidSku,
            Self::Quantity => RejectCode::InvalidQuantity,
            Self::UnitPrice => RejectCode::PriceNotANumber,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryColumn {
    Sku,
    Stock,
}

impl Column for InventoryColumn {
    const ALL: &'static [Self] = &[Self::Sku, Self::Stock];
    fn name(self) -> &'static str {
        match self {
            Self::Sku => "sku",
            Self::Stock => "stock",
        }
    }
    fn required(self) -> bool {
        true
    }
    fn index(self) -> usize {
        self as usize
    }
    fn missing(self) -> Option<RejectCode> {
        match self {
            Self::Sku => Some(RejectCode::MissingSku),
            Self::Stock => Some(RejectCode::MissingStock),
        }
    }
    fn invalid(self) -> RejectCode {
        match self {
            Self::Sku => RejectCode::InvalidSku,
            Self::Stock => RejectCode::InvalidStock,
        }
    }
}

/// A column's header name and whether it is required, in index order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub required: bool,
}

fn specs<C: Column>() -> Vec<ColumnSpec> {
    C::ALL
        .iter()
        .map(|c| ColumnSpec {
            name: c.name(),
            required: c.required(),
        })
        .collect()
}

/// The columns of `kind`, in index order.
pub fn columns(kind: Kind) -> Vec<ColumnSpec> {
    match kind {
        Kind::Products => specs::<ProductColumn>(),
        Kind::Orders => specs::<OrderColumn>(),
        Kind::Inventory => specs::<InventoryColumn>(),
    }
}

/// The columns of Shopify's product export, in index order.
pub fn shopify_columns() -> Vec<ColumnSpec> {
    specs::<ShopifyColumn>()
}

/// The columns of Shopify's product CSV export that orderflow reads (contract §7);
/// its other columns (vendor, tags, SEO, images…) are left alone. One product
/// (a handle) is a first row with its title, body and options' names, and
/// continuation rows that give only what differs: a variant, or an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopifyColumn {
    Handle,
    Title,
    Body,
    ProductCategory,
    Type,
    Option1Name,
    Option1Value,
    Option2Name,
    Option2Value,
    Option3Name,
    Option3Value,
    VariantSku,
    VariantPrice,
    VariantInventoryQty,
    VariantGrams,
    VariantBarcode,
    Status,
}

impl ShopifyColumn {
    /// The (name, value) columns of each option, in order.
    pub const OPTIONS: [(Self, Self); 3] = [
        (Self::Option1Name, Self::Option1Value),
        (Self::Option2Name, Self::Option2Value),
        (Self::Option3Name, Self::Option3Value),
    ];

    /// Whether a header (lower-cased, trimmed names) is Shopify's export: it has
    /// `Handle` and `Variant SKU` or `Variant Price`.
    pub fn is_export(names: &[String]) -> bool {
        let has = |n: &str| names.iter().any(|h| h == n);
        has("handle") && (has("variant sku") || has("variant price"))
    }
}

impl Column for ShopifyColumn {
    const ALL: &'static [Self] = &[
        Self::Handle,
        Self::Title,
        Self::Body,
        Self::ProductCategory,
        Self::Type,
        Self::Option1Name,
        Self::Option1Value,
        Self::Option2Name,
        Self::Option2Value,
        Self::Option3Name,
        Self::Option3Value,
        Self::VariantSku,
        Self::VariantPrice,
        Self::VariantInventoryQty,
        Self::VariantGrams,
        Self::VariantBarcode,
        Self::Status,
    ];
    fn name(self) -> &'static str {
        match self {
            Self::Handle => "handle",
            Self::Title => "title",
            Self::Body => "body (html)",
            Self::ProductCategory => "product category",
            Self::Type => "type",
            Self::Option1Name => "option1 name",
            Self::Option1Value => "option1 value",
            Self::Option2Name => "option2 name",
            Self::Option2Value => "option2 value",
            Self::Option3Name => "option3 name",
            Self::Option3Value => "option3 value",
            Self::VariantSku => "variant sku",
            Self::VariantPrice => "variant price",
            Self::VariantInventoryQty => "variant inventory qty",
            Self::VariantGrams => "variant grams",
            Self::VariantBarcode => "variant barcode",
            Self::Status => "status",
        }
    }
    fn required(self) -> bool {
        matches!(self, Self::Handle)
    }
    fn index(self) -> usize {
        self as usize
    }
    fn missing(self) -> Option<RejectCode> {
        match self {
            Self::Handle => Some(RejectCode::MissingGroup),
            _ => None,
        }
    }
    fn invalid(self) -> RejectCode {
        match self {
            Self::Handle => RejectCode::InvalidGroup,
            Self::Title => RejectCode::InvalidName,
            Self::Body => RejectCode::InvalidDescription,
            Self::ProductCategory | Self::Type => RejectCode::InvalidCategory,
            Self::Option1Name
            | Self::Option1Value
            | Self::Option2Name
            | Self::Option2Value
            | Self::Option3Name
            | Self::Option3Value => RejectCode::InvalidOptions,
            Self::VariantSku => RejectCode::InvalidSku,
            Self::VariantPrice => RejectCode::PriceNotANumber,
            Self::VariantInventoryQty => RejectCode::InvalidStock,
            Self::VariantGrams => RejectCode::InvalidWeight,
            Self::VariantBarcode => RejectCode::InvalidBarcode,
            Self::Status => RejectCode::InvalidStatus,
        }
    }
    fn inherited(self) -> bool {
        matches!(
            self,
            Self::Title
                | Self::Body
                | Self::ProductCategory
                | Self::Type
                | Self::Option1Name
                | Self::Option2Name
                | Self::Option3Name
                | Self::Status
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<C: Column + std::fmt::Debug>() {
        for (i, c) in C::ALL.iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?} is listed where its index says");
            assert_eq!(c.required(), c.missing().is_some(), "{c:?}");
        }
    }

    #[test]
    fn every_column_sits_at_its_index() {
        check::<ProductColumn>();
        check::<ShopifyColumn>();
        check::<OrderColumn>();
        check::<InventoryColumn>();
    }
}
