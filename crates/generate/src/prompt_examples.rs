//! The in-context examples of the prompt library, written for this project.
//!
//! World examples use the world's vocabulary (shapes: circle, square, triangle, star,
//! hexagon, diamond; eight colours; small/large; matte/metal/striped) so a model copies
//! the right object words; real-data examples use everyday objects. Every step example must
//! pass the validator and every Python example the sandbox's checker (tested in `prompt`).

/// One worked example: the question (or statement) and its program.
pub struct Example {
    pub question: &'static str,
    pub program: &'static str,
}

const fn ex(question: &'static str, program: &'static str) -> Example {
    Example { question, program }
}

pub const GQA_WORLD_STEP: &[Example] = &[
    ex(
        "What color is the large star?",
        "BOX0=LOC(image=IMAGE,object='large star')
IMAGE0=CROP(image=IMAGE,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='What color is the large star?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "Is there a triangle to the left of the blue circle?",
        "BOX0=LOC(image=IMAGE,object='blue circle')
IMAGE0=CROP_LEFTOF(image=IMAGE,box=BOX0)
BOX1=LOC(image=IMAGE0,object='triangle')
ANSWER0=COUNT(box=BOX1)
ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER1)",
    ),
    ex(
        "How many striped hexagons are there?",
        "BOX0=LOC(image=IMAGE,object='striped hexagon')
ANSWER0=COUNT(box=BOX0)
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "Is the small square made of metal?",
        "BOX0=LOC(image=IMAGE,object='small square')
IMAGE0=CROP(image=IMAGE,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='Is the small square metal?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "What shape is the object below the red diamond?",
        "BOX0=LOC(image=IMAGE,object='red diamond')
IMAGE0=CROP_BELOW(image=IMAGE,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='What shape is the object?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "Are there both a green star and a yellow circle?",
        "BOX0=LOC(image=IMAGE,object='green star')
BOX1=LOC(image=IMAGE,object='yellow circle')
ANSWER0=COUNT(box=BOX0)
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} > 0 and {ANSWER1} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "Is the purple triangle small or large?",
        "BOX0=LOC(image=IMAGE,object='purple triangle')
IMAGE0=CROP(image=IMAGE,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='Is the purple triangle small or large?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
];

pub const GQA_WORLD_PYTHON: &[Example] = &[
    ex("What color is the large star?", "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    stars = image_patch.find(\"large star\")
    if len(stars) == 0:
        return image_patch.simple_query(\"What color is the large star?\")
    return stars[0].simple_query(\"What color is the star?\")
"),
    ex("Is there a triangle to the left of the blue circle?", "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    circles = image_patch.find(\"blue circle\")
    if len(circles) == 0:
        return \"no\"
    circle = circles[0]
    for triangle in image_patch.find(\"triangle\"):
        if triangle.horizontal_center < circle.horizontal_center:
            return \"yes\"
    return \"no\"
"),
    ex("How many striped hexagons are there?", "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    return str(len(image_patch.find(\"striped hexagon\")))
"),
    ex("Is the small square made of metal?", "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    squares = image_patch.find(\"small square\")
    if len(squares) == 0:
        return \"no\"
    return bool_to_yesno(squares[0].verify_property(\"small square\", \"metal\"))
"),
    ex("Are there both a green star and a yellow circle?", "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists(\"green star\") and image_patch.exists(\"yellow circle\"))
"),
    ex("Is the purple triangle small or large?", "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    triangles = image_patch.find(\"purple triangle\")
    if len(triangles) == 0:
        return image_patch.best_text_match([\"small\", \"large\"])
    return triangles[0].best_text_match([\"small\", \"large\"])
"),
];

pub const NLVR_WORLD_STEP: &[Example] = &[
    ex(
        "The left image contains exactly two red circles.",
        "BOX0=LOC(image=LEFT,object='red circle')
ANSWER0=COUNT(box=BOX0)
ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} == 2 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER1)",
    ),
    ex(
        "Both images contain a star.",
        "BOX0=LOC(image=LEFT,object='star')
ANSWER0=COUNT(box=BOX0)
BOX1=LOC(image=RIGHT,object='star')
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} > 0 and {ANSWER1} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "There are more squares in the left image than in the right image.",
        "BOX0=LOC(image=LEFT,object='square')
ANSWER0=COUNT(box=BOX0)
BOX1=LOC(image=RIGHT,object='square')
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} > {ANSWER1} else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "Exactly one of the images has a blue triangle.",
        "BOX0=LOC(image=LEFT,object='blue triangle')
ANSWER0=COUNT(box=BOX0)
BOX1=LOC(image=RIGHT,object='blue triangle')
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if ({ANSWER0} > 0) != ({ANSWER1} > 0) else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "There are three hexagons in total.",
        "BOX0=LOC(image=LEFT,object='hexagon')
ANSWER0=COUNT(box=BOX0)
BOX1=LOC(image=RIGHT,object='hexagon')
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} + {ANSWER1} == 3 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "The diamond in the right image is orange.",
        "BOX0=LOC(image=RIGHT,object='diamond')
IMAGE0=CROP(image=RIGHT,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='Is the diamond orange?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
];

pub const NLVR_WORLD_PYTHON: &[Example] = &[
    ex(
        "The left image contains exactly two red circles.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    return bool_to_yesno(len(left.find(\"red circle\")) == 2)
",
    ),
    ex(
        "Both images contain a star.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    return bool_to_yesno(left.exists(\"star\") and right.exists(\"star\"))
",
    ),
    ex(
        "There are more squares in the left image than in the right image.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    n_left = len(left.find(\"square\"))
    n_right = len(right.find(\"square\"))
    return bool_to_yesno(n_left > n_right)
",
    ),
    ex(
        "Exactly one of the images has a blue triangle.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    return bool_to_yesno(left.exists(\"blue triangle\") != right.exists(\"blue triangle\"))
",
    ),
    ex(
        "The diamond in the right image is orange.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    diamonds = right.find(\"diamond\")
    if len(diamonds) == 0:
        return \"no\"
    return bool_to_yesno(diamonds[0].verify_property(\"diamond\", \"orange\"))
",
    ),
];

pub const GQA_STEP: &[Example] = &[
    ex(
        "What color is the cup on the table?",
        "BOX0=LOC(image=IMAGE,object='table')
IMAGE0=CROP(image=IMAGE,box=BOX0)
BOX1=LOC(image=IMAGE0,object='cup')
IMAGE1=CROP(image=IMAGE0,box=BOX1)
ANSWER0=VQA(image=IMAGE1,question='What color is the cup?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "Is there a bicycle to the right of the man?",
        "BOX0=LOC(image=IMAGE,object='man')
IMAGE0=CROP_RIGHTOF(image=IMAGE,box=BOX0)
BOX1=LOC(image=IMAGE0,object='bicycle')
ANSWER0=COUNT(box=BOX1)
ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER1)",
    ),
    ex(
        "Which kind of animal is in front of the fence?",
        "BOX0=LOC(image=IMAGE,object='fence')
IMAGE0=CROP_INFRONTOF(image=IMAGE,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='Which kind of animal is in front of the fence?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "Are there both plates and forks in this picture?",
        "BOX0=LOC(image=IMAGE,object='plate')
BOX1=LOC(image=IMAGE,object='fork')
ANSWER0=COUNT(box=BOX0)
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} > 0 and {ANSWER1} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "Is the lamp above the sofa made of metal or wood?",
        "BOX0=LOC(image=IMAGE,object='sofa')
IMAGE0=CROP_ABOVE(image=IMAGE,box=BOX0)
BOX1=LOC(image=IMAGE0,object='lamp')
IMAGE1=CROP(image=IMAGE0,box=BOX1)
ANSWER0=VQA(image=IMAGE1,question='Is the lamp made of metal or wood?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "Do the shirt and the cap have the same color?",
        "BOX0=LOC(image=IMAGE,object='shirt')
IMAGE0=CROP(image=IMAGE,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='What color is the shirt?')
BOX1=LOC(image=IMAGE,object='cap')
IMAGE1=CROP(image=IMAGE,box=BOX1)
ANSWER1=VQA(image=IMAGE1,question='What color is the cap?')
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} == {ANSWER1} else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
];

pub const GQA_PYTHON: &[Example] = &[
    ex(
        "What color is the cup on the table?",
        "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    tables = image_patch.find(\"table\")
    if len(tables) == 0:
        return image_patch.simple_query(\"What color is the cup on the table?\")
    cups = tables[0].find(\"cup\")
    if len(cups) == 0:
        return tables[0].simple_query(\"What color is the cup?\")
    return cups[0].simple_query(\"What color is the cup?\")
",
    ),
    ex(
        "Is there a bicycle to the right of the man?",
        "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    men = image_patch.find(\"man\")
    if len(men) == 0:
        return \"no\"
    man = men[0]
    for bicycle in image_patch.find(\"bicycle\"):
        if bicycle.horizontal_center > man.horizontal_center:
            return \"yes\"
    return \"no\"
",
    ),
    ex(
        "Which kind of animal is closer to the camera, the dog or the horse?",
        "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    dogs = image_patch.find(\"dog\")
    horses = image_patch.find(\"horse\")
    if len(dogs) == 0 or len(horses) == 0:
        return image_patch.simple_query(\"Which animal is closer, the dog or the horse?\")
    if dogs[0].compute_depth() < horses[0].compute_depth():
        return \"dog\"
    return \"horse\"
",
    ),
    ex(
        "Are there both plates and forks in this picture?",
        "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists(\"plate\") and image_patch.exists(\"fork\"))
",
    ),
    ex(
        "Is the lamp made of metal or wood?",
        "def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    lamps = image_patch.find(\"lamp\")
    if len(lamps) == 0:
        return image_patch.best_text_match([\"metal\", \"wood\"])
    return lamps[0].best_text_match([\"metal\", \"wood\"])
",
    ),
];

pub const NLVR2_STEP: &[Example] = &[
    ex(
        "There are exactly three dogs in the right image.",
        "BOX0=LOC(image=RIGHT,object='dog')
ANSWER0=COUNT(box=BOX0)
ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} == 3 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER1)",
    ),
    ex(
        "Each image shows at least one bottle.",
        "BOX0=LOC(image=LEFT,object='bottle')
ANSWER0=COUNT(box=BOX0)
BOX1=LOC(image=RIGHT,object='bottle')
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} > 0 and {ANSWER1} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "One image contains more birds than the other image.",
        "BOX0=LOC(image=LEFT,object='bird')
ANSWER0=COUNT(box=BOX0)
BOX1=LOC(image=RIGHT,object='bird')
ANSWER1=COUNT(box=BOX1)
ANSWER2=EVAL(expr=\"'yes' if {ANSWER0} != {ANSWER1} else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER2)",
    ),
    ex(
        "The bus in the left image is red.",
        "BOX0=LOC(image=LEFT,object='bus')
IMAGE0=CROP(image=LEFT,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='Is the bus red?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
    ex(
        "A person is sitting on a bench in the right image.",
        "ANSWER0=VQA(image=RIGHT,question='Is a person sitting on a bench?')
FINAL_RESULT=RESULT(var=ANSWER0)",
    ),
];

pub const NLVR2_PYTHON: &[Example] = &[
    ex(
        "There are exactly three dogs in the right image.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    return bool_to_yesno(len(right.find(\"dog\")) == 3)
",
    ),
    ex(
        "Each image shows at least one bottle.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    return bool_to_yesno(left.exists(\"bottle\") and right.exists(\"bottle\"))
",
    ),
    ex(
        "The bus in the left image is red.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    buses = left.find(\"bus\")
    if len(buses) == 0:
        return \"no\"
    return bool_to_yesno(buses[0].verify_property(\"bus\", \"red\"))
",
    ),
    ex(
        "A person is sitting on a bench in the right image.",
        "def execute_command(image_dict) -> str:
    left = ImagePatch(image_dict['left'])
    right = ImagePatch(image_dict['right'])
    return right.simple_query(\"Is a person sitting on a bench?\")
",
    ),
];
