//! Names that pseudonyms are made of: 64 × 64 plausible combinations.

pub const FIRST: [&str; 64] = [
    "Ada", "Alan", "Alice", "Amara", "Ana", "Arjun", "Aziz", "Ben", "Bruno", "Carla", "Chen",
    "Chloe", "Daniel", "Diego", "Elena", "Emil", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo",
    "Ines", "Ivan", "Jade", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Lucas",
    "Maya", "Mei", "Mila", "Nadia", "Noah", "Nora", "Omar", "Olga", "Paul", "Priya", "Quinn",
    "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Theo", "Uma", "Victor", "Vera", "Wei",
    "Willa", "Xavier", "Yara", "Yusuf", "Zara", "Zoe", "Marta", "Pedro", "Ingrid",
];

pub const LAST: [&str; 64] = [
    "Adams", "Alvarez", "Andersen", "Bauer", "Becker", "Bianchi", "Brown", "Castro", "Chen",
    "Costa", "Dubois", "Dvorak", "Evans", "Fischer", "Garcia", "Gupta", "Hansen", "Haddad", "Ito",
    "Jansen", "Johnson", "Kim", "Kowalski", "Lambert", "Larsen", "Lee", "Lopez", "Martin", "Meyer",
    "Moreau", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Park", "Patel", "Perez", "Petrov",
    "Popescu", "Quinn", "Rahman", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Sousa",
    "Suzuki", "Tanaka", "Taylor", "Torres", "Varga", "Vogel", "Wagner", "Walker", "Weber", "Wong",
    "Yamamoto", "Young", "Zhang", "Ziegler", "Mensah",
];

/// The longest `First Last` these lists can make.
pub fn longest() -> usize {
    let max = |l: &[&str]| l.iter().map(|s| s.len()).max().unwrap_or(0);
    max(&FIRST) + 1 + max(&LAST)
}
