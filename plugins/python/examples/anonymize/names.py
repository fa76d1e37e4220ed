"""Names that pseudonyms are made of: 64 x 64 plausible combinations (as the Rust plugin's)."""

FIRST = (
    "Ada", "Alan", "Alice", "Amara", "Ana", "Arjun", "Aziz", "Ben", "Bruno", "Carla", "Chen",
    "Chloe", "Daniel", "Diego", "Elena", "Emil", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo",
    "Ines", "Ivan", "Jade", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Lucas",
    "Maya", "Mei", "Mila", "Nadia", "Noah", "Nora", "Omar", "Olga", "Paul", "Priya", "Quinn",
    "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Theo", "Uma", "Victor", "Vera", "Wei",
    "Willa", "Xavier", "Yara", "Yusuf", "Zara", "Zoe", "Marta", "Pedro", "Ingrid",
)

LAST = (
    "Adams", "Alvarez", "Andersen", "Bauer", "Becker", "Bianchi", "Brown", "Castro", "Chen",
    "Costa", "Dubois", "Dvorak", "Evans", "Fischer", "Garcia", "Gupta", "Hansen", "Haddad", "Ito",
    "Jansen", "Johnson", "Kim", "Kowalski", "Lambert", "Larsen", "Lee", "Lopez", "Martin", "Meyer",
    "Moreau", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Park", "Patel", "Perez", "Petrov",
    "Popescu", "Quinn", "Rahman", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Sousa",
    "Suzuki", "Tanaka", "Taylor", "Torres", "Varga", "Vogel", "Wagner", "Walker", "Weber", "Wong",
    "Yamamoto", "Young", "Zhang", "Ziegler", "Mensah",
)


def longest():
    """The longest `First Last` these lists can make."""
    return max(map(len, FIRST)) + 1 + max(map(len, LAST))
